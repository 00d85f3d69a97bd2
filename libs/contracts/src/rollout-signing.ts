import { createHash, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { SCHEMA_VERSION } from './messages';
import { ModelCommandSchema, RolloutManifestSchema, SignedManifestSchema, type ModelCommand, type RolloutManifest, type SignedManifest } from './rollout';

/**
 * Signing and verification of rollout manifests, used by the hub (signs) and the agent
 * (verifies). Ed25519 through node:crypto over {@link canonicalJson} of the manifest.
 */

/**
 * The canonical JSON encoding that is signed. Precisely:
 * - objects: members sorted by key in UTF-16 code unit order (`Array.prototype.sort`),
 *   written `{"k":v,...}`; a member whose value is `undefined` is an error, not skipped;
 * - arrays: `[a,b,...]` in order;
 * - strings: as `JSON.stringify` writes them (ECMAScript's escaping, which is deterministic);
 * - numbers: safe integers only, in decimal without exponent, `-0` as `0`; any other number
 *   is an error (no float formatting to agree on);
 * - `true`, `false`, `null`; anything else (undefined, bigint, functions, dates) is an error;
 * - no whitespace anywhere; the result is encoded as UTF-8.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON: ${value} is not a safe integer`);
      return String(value === 0 ? 0 : value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new TypeError('canonical JSON: only plain objects');
      const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries
        .map(([k, v]) => {
          if (v === undefined) throw new TypeError(`canonical JSON: member "${k}" is undefined`);
          return `${JSON.stringify(k)}:${canonicalJson(v)}`;
        })
        .join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON: cannot encode a ${typeof value}`);
  }
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hash of a head's label list, in output order: sha256 of its canonical JSON (an array of strings). */
export function labelsHash(labels: readonly string[]): string {
  return sha256Hex(canonicalJson([...labels]));
}

/** Key id: sha256 (hex) of the public key's SPKI DER encoding. */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return sha256Hex(publicKey.export({ type: 'spki', format: 'der' }));
}

/** The form devices are given a public key in: base64 of its SPKI DER (the body of the PEM). */
export function publicKeyBase64(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
}

/** An Ed25519 public key from PEM, base64 of the SPKI DER, or base64 of the raw 32 bytes. */
export function parsePublicKey(text: string): KeyObject {
  const t = text.trim();
  let key: KeyObject;
  if (t.startsWith('-----BEGIN')) {
    key = createPublicKey(t);
  } else {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t)) throw new Error('public key: expected PEM or base64');
    const der = Buffer.from(t, 'base64');
    key =
      der.length === 32
        ? createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: der.toString('base64url') }, format: 'jwk' })
        : createPublicKey({ key: der, format: 'der', type: 'spki' });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`public key: expected Ed25519, got ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}

/** Public keys a device trusts, by key id. */
export type TrustedKeys = ReadonlyMap<string, KeyObject>;

/**
 * Parse a trusted-keys file: one key a line, `<keyid> <public key>` (base64 SPKI DER or raw
 * 32 bytes), `#` comments and blank lines ignored. The key id must be {@link keyIdOf} the key,
 * so a mislabelled line is an error instead of a key that never matches.
 */
export function parseTrustedKeys(text: string, source = 'trusted keys'): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const where = `${source} line ${i + 1}`;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw new Error(`${where}: expected "<keyid> <public key>"`);
    const [id, encoded] = parts as [string, string];
    let key: KeyObject;
    try {
      key = parsePublicKey(encoded);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
    const actual = keyIdOf(key);
    if (id !== actual) throw new Error(`${where}: key id ${id} does not match the key (its id is ${actual})`);
    keys.set(id, key);
  });
  return keys;
}

/** A manifest to sign: everything but the schema version and the key id, which signing fills in. */
export type UnsignedManifest = Omit<RolloutManifest, 'v' | 'keyId'>;

/** Sign a manifest with an Ed25519 private key (the hub). */
export function signManifest(fields: UnsignedManifest, privateKey: KeyObject): SignedManifest {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new Error('signManifest: needs an Ed25519 private key');
  const manifest = RolloutManifestSchema.parse({ ...fields, v: SCHEMA_VERSION, keyId: keyIdOf(privateKey) });
  const signature = sign(null, Buffer.from(canonicalJson(manifest), 'utf8'), privateKey).toString('base64');
  return { manifest, signature };
}

export type ManifestCheckFailure = 'malformed' | 'unknown_key' | 'bad_signature' | 'expired';

export type ManifestCheck = { ok: true; manifest: RolloutManifest } | { ok: false; reason: ManifestCheckFailure; message: string };

/**
 * Check a signed manifest as received: well-formed, signed by a trusted key over exactly
 * these fields, not expired at `now`. The signature is checked before the expiry, so a
 * manifest whose expiry was edited is reported as tampered. Device-specific checks (release
 * counter, backbone) come after this, on the returned manifest.
 */
export function verifySignedManifest(raw: unknown, trustedKeys: TrustedKeys, now: Date): ManifestCheck {
  const parsed = SignedManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, reason: 'malformed', message: `${first?.path.join('.') || '(root)'}: ${first?.message ?? 'invalid'}` };
  }
  const { manifest, signature } = parsed.data;
  const key = trustedKeys.get(manifest.keyId);
  if (!key) return { ok: false, reason: 'unknown_key', message: `manifest signed by key ${manifest.keyId}, which this device does not trust` };
  const good = verify(null, Buffer.from(canonicalJson(manifest), 'utf8'), key, Buffer.from(signature, 'base64'));
  if (!good) return { ok: false, reason: 'bad_signature', message: `signature does not match the manifest of ${manifest.modelVersion}` };
  if (now.getTime() >= Date.parse(manifest.expiresAt)) {
    return { ok: false, reason: 'expired', message: `manifest of ${manifest.modelVersion} expired at ${manifest.expiresAt}` };
  }
  return { ok: true, manifest };
}

/** A command to sign: what it does and to whom; signing adds the schema version, nonce, key id and signature. */
export type UnsignedModelCommand = Omit<ModelCommand, 'v' | 'nonce' | 'keyId' | 'signature'>;

/** Sign a `model-command` with a release key (the hub), with a fresh random nonce. */
export function signModelCommand(fields: UnsignedModelCommand, privateKey: KeyObject): ModelCommand {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new Error('signModelCommand: needs an Ed25519 private key');
  const body = { ...fields, v: SCHEMA_VERSION, nonce: randomBytes(16).toString('hex'), keyId: keyIdOf(privateKey) };
  const signature = sign(null, Buffer.from(canonicalJson(body), 'utf8'), privateKey).toString('base64');
  return ModelCommandSchema.parse({ ...body, signature });
}

export type CommandCheckFailure = 'malformed' | 'unknown_key' | 'bad_signature' | 'expired' | 'wrong_device' | 'replayed';

export type CommandCheck = { ok: true; command: ModelCommand } | { ok: false; reason: CommandCheckFailure; message: string };

/**
 * Check a `model-command` as received: well-formed, signed by a current release key over every
 * field, for this device, not expired at `now`. The nonce (replay) is the caller's to check,
 * against the nonces it accepted before.
 */
export function verifyModelCommand(raw: unknown, releaseKeys: TrustedKeys, deviceId: string, now: Date): CommandCheck {
  const parsed = ModelCommandSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, reason: 'malformed', message: `${first?.path.join('.') || '(root)'}: ${first?.message ?? 'invalid'}` };
  }
  const { signature, ...body } = parsed.data;
  const key = releaseKeys.get(body.keyId);
  if (!key) return { ok: false, reason: 'unknown_key', message: `command signed by key ${body.keyId}, which is not a current release key` };
  if (!verify(null, Buffer.from(canonicalJson(body), 'utf8'), key, Buffer.from(signature, 'base64'))) {
    return { ok: false, reason: 'bad_signature', message: `signature does not match the ${body.command} command of ${body.modelVersion}` };
  }
  if (body.deviceId !== deviceId) return { ok: false, reason: 'wrong_device', message: `command is for device ${body.deviceId}` };
  if (now.getTime() >= Date.parse(body.expiresAt)) return { ok: false, reason: 'expired', message: `${body.command} command expired at ${body.expiresAt}` };
  return { ok: true, command: parsed.data };
}
