import { createHash } from 'node:crypto';

/** SHA-256 digest of a secret, for comparing secrets in constant time (`timingSafeEqual`) without keeping them. */
export function sha256(value: string | Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}
