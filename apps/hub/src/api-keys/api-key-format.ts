import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Every key starts with this, so a leaked key is easy to spot in logs and by secret scanners. */
export const API_KEY_PREFIX = 'shk_';

const KEY_PATTERN = /^shk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedKey {
  /** The public part (safe to log). */
  id: string;
  /** The whole key, `shk_<id>_<secret>`; shown once. */
  key: string;
  /** Hex SHA-256 of the secret part: what is stored. */
  secretSha256: string;
}

/** A new key: a 64-bit id and a 256-bit secret. SHA-256 suffices for a secret this random (scrypt is for passwords people choose). */
export function generateApiKey(): GeneratedKey {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, key: `${API_KEY_PREFIX}${id}_${secret}`, secretSha256: sha256Hex(secret) };
}

/** The id and secret of a well-formed key, or undefined. */
export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  const m = KEY_PATTERN.exec(key);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** Whether `secret` hashes to the stored digest (constant time). */
export function secretMatches(secret: string, storedSha256: string): boolean {
  const expected = Buffer.from(storedSha256, 'hex');
  const actual = createHash('sha256').update(secret).digest();
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
