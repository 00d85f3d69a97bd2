import { sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { SCHEMA_VERSION } from './messages';
import { canonicalJson, keyIdOf, parsePublicKey, publicKeyBase64, type TrustedKeys } from './rollout-signing';

/**
 * The release key list (in the spirit of TUF's root role delegating to a targets role): an
 * offline *root* key signs a versioned, expiring list of the *release* keys that may sign
 * rollout manifests and model commands. Devices are provisioned with root public keys only;
 * they take a new list only when a root they trust signed it with a higher version, so a
 * leaked release key is revoked by publishing a list without it, and an old list (one that
 * still names the leaked key) can never be replayed.
 */

const IsoTime = z.iso.datetime({ offset: true });
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256: 64 lowercase hex digits');
const PublicKeyText = z.string().min(1).max(200).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'public key: base64');

/** Most release keys one list names (a rotation needs two or three). */
export const MAX_RELEASE_KEYS = 16;

/**
 * The signed part. `root` names the root key that signed it (a device looks the key id up
 * among its own pinned roots and never trusts the public key written here; it is carried so
 * a hub can tell new devices which root to pin). Each release key's `keyId` must be
 * {@link keyIdOf} its `publicKey`.
 */
export const ReleaseKeyListSchema = z
  .object({
    v: z.literal(SCHEMA_VERSION),
    version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    issuedAt: IsoTime,
    expiresAt: IsoTime,
    root: z.object({ keyId: Sha256Hex, publicKey: PublicKeyText }).strict(),
    keys: z
      .array(z.object({ keyId: Sha256Hex, publicKey: PublicKeyText, name: z.string().max(100).optional() }).strict())
      .max(MAX_RELEASE_KEYS),
  })
  .strict()
  .refine((l) => Date.parse(l.expiresAt) > Date.parse(l.issuedAt), { message: 'expiresAt must be after issuedAt', path: ['expiresAt'] });
export type ReleaseKeyList = z.infer<typeof ReleaseKeyListSchema>;

/** A list with the root's Ed25519 signature over `canonicalJson(list)`, base64. */
export const SignedKeyListSchema = z.object({
  list: ReleaseKeyListSchema,
  signature: z.base64().length(88, 'Ed25519 signature: 64 bytes, base64'),
});
export type SignedKeyList = z.infer<typeof SignedKeyListSchema>;

/** What the root signs: the version, validity and the release public keys. */
export interface UnsignedKeyList {
  version: number;
  issuedAt: string;
  expiresAt: string;
  keys: ReadonlyArray<{ publicKey: KeyObject | string; name?: string }>;
}

/** Sign a release key list with the root's Ed25519 private key (`shelf keys list sign`). */
export function signKeyList(fields: UnsignedKeyList, rootPrivateKey: KeyObject): SignedKeyList {
  if (rootPrivateKey.type !== 'private' || rootPrivateKey.asymmetricKeyType !== 'ed25519') throw new Error('signKeyList: needs an Ed25519 private key');
  const keys = fields.keys.map((k) => {
    const key = typeof k.publicKey === 'string' ? parsePublicKey(k.publicKey) : k.publicKey;
    return { keyId: keyIdOf(key), publicKey: publicKeyBase64(key), ...(k.name ? { name: k.name } : {}) };
  });
  const list = ReleaseKeyListSchema.parse({
    v: SCHEMA_VERSION,
    version: fields.version,
    issuedAt: fields.issuedAt,
    expiresAt: fields.expiresAt,
    root: { keyId: keyIdOf(rootPrivateKey), publicKey: publicKeyBase64(rootPrivateKey) },
    keys,
  });
  return { list, signature: sign(null, Buffer.from(canonicalJson(list), 'utf8'), rootPrivateKey).toString('base64') };
}

export type KeyListFailure = 'malformed' | 'unknown_root' | 'bad_signature' | 'expired' | 'not_newer';

/** A verified list: the list itself and its release keys by key id. */
export interface VerifiedKeyList {
  signed: SignedKeyList;
  list: ReleaseKeyList;
  keys: TrustedKeys;
}

export type KeyListCheck = ({ ok: true } & VerifiedKeyList) | { ok: false; reason: KeyListFailure; message: string };

/**
 * Check a signed key list as received: well-formed, signed by one of `roots` (the device's
 * pinned root keys, by key id) over exactly these fields, every release key id matching its
 * key, and (with `now`) not expired. The signature comes before the expiry, so an edited
 * expiry reads as tampering.
 */
export function verifyKeyList(raw: unknown, roots: TrustedKeys, now?: Date): KeyListCheck {
  const parsed = SignedKeyListSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, reason: 'malformed', message: `key list ${first?.path.join('.') || '(root)'}: ${first?.message ?? 'invalid'}` };
  }
  const { list, signature } = parsed.data;
  const root = roots.get(list.root.keyId);
  if (!root) return { ok: false, reason: 'unknown_root', message: `key list v${list.version} is signed by root ${list.root.keyId}, which this device does not trust` };
  if (!verify(null, Buffer.from(canonicalJson(list), 'utf8'), root, Buffer.from(signature, 'base64'))) {
    return { ok: false, reason: 'bad_signature', message: `signature does not match key list v${list.version}` };
  }
  const keys = new Map<string, KeyObject>();
  for (const k of list.keys) {
    let key: KeyObject;
    try {
      key = parsePublicKey(k.publicKey);
    } catch (err) {
      return { ok: false, reason: 'malformed', message: `key list v${list.version}: key ${k.keyId}: ${(err as Error).message}` };
    }
    if (keyIdOf(key) !== k.keyId) return { ok: false, reason: 'malformed', message: `key list v${list.version}: key id ${k.keyId} does not match its key` };
    keys.set(k.keyId, key);
  }
  if (now && now.getTime() >= Date.parse(list.expiresAt)) return { ok: false, reason: 'expired', message: `key list v${list.version} expired at ${list.expiresAt}` };
  return { ok: true, signed: parsed.data, list, keys };
}

/**
 * Whether a device holding `held` (undefined: none yet) takes `raw`: {@link verifyKeyList}
 * at `now`, and a version above the held one. The same version again is `not_newer` too (a
 * retained list delivered twice); callers that see the identical signature may ignore it.
 */
export function acceptKeyList(raw: unknown, held: { version: number } | undefined, roots: TrustedKeys, now: Date): KeyListCheck {
  const v = verifyKeyList(raw, roots, now);
  if (!v.ok) return v;
  if (held && v.list.version <= held.version) {
    return { ok: false, reason: 'not_newer', message: `key list v${v.list.version} is not newer than the v${held.version} this device holds` };
  }
  return v;
}

/** The release keys that sign offers now: the held list's, none once it expired. */
export function currentReleaseKeys(held: VerifiedKeyList | undefined, now: Date): TrustedKeys {
  if (!held || now.getTime() >= Date.parse(held.list.expiresAt)) return new Map();
  return held.keys;
}
