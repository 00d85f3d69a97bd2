import { generateKeyPairSync, sign } from 'node:crypto';
import { isUnverifiedOfferStatus, RolloutStatusSchema, type RolloutManifest } from './rollout';
import {
  canonicalJson,
  keyIdOf,
  labelsHash,
  parsePublicKey,
  parseTrustedKeys,
  publicKeyBase64,
  signManifest,
  signModelCommand,
  verifyModelCommand,
  verifySignedManifest,
  type UnsignedManifest,
} from './rollout-signing';

const NOW = new Date('2026-12-01T02:00:00.000Z');

function fields(over: Partial<UnsignedManifest> = {}): UnsignedManifest {
  return {
    modelVersion: 'grocery-7',
    offerId: 'ro_1',
    modelLine: 'default',
    releaseCounter: 7,
    backbone: { id: 'mobilenet_v1_050_224', checksum: 'a'.repeat(64) },
    labelsHash: labelsHash(['apples', 'bananas']),
    artifact: { sha256: 'b'.repeat(64), length: 1234 },
    issuedAt: '2026-12-01T01:00:00.000Z',
    expiresAt: '2026-12-08T01:00:00.000Z',
    ...over,
  };
}

describe('canonicalJson', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: -0 } })).toBe('{"a":{"c":0,"d":[true,null,"x"]},"b":1}');
  });

  it('is the same for the same value whatever the key order', () => {
    expect(canonicalJson({ x: 1, y: 'é"\n' })).toBe(canonicalJson({ y: 'é"\n', x: 1 }));
  });

  it('refuses what has no single encoding', () => {
    expect(() => canonicalJson({ a: 1.5 })).toThrow(/safe integer/);
    expect(() => canonicalJson({ a: undefined })).toThrow(/undefined/);
    expect(() => canonicalJson(new Date())).toThrow(/plain objects/);
    expect(() => canonicalJson(1n)).toThrow(/bigint/);
  });
});

describe(verifySignedManifest.name, () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const trusted = new Map([[keyIdOf(publicKey), publicKey]]);

  it('accepts what was signed, round trip through JSON', () => {
    const signed = signManifest(fields(), privateKey);
    const sut = verifySignedManifest(JSON.parse(JSON.stringify(signed)), trusted, NOW);
    expect(sut).toEqual({ ok: true, manifest: { ...fields(), v: 1, keyId: keyIdOf(publicKey) } });
  });

  it.each<[string, (m: RolloutManifest) => RolloutManifest]>([
    ['release counter', (m) => ({ ...m, releaseCounter: m.releaseCounter + 1 })],
    ['artifact hash', (m) => ({ ...m, artifact: { ...m.artifact, sha256: 'c'.repeat(64) } })],
    ['artifact length', (m) => ({ ...m, artifact: { ...m.artifact, length: 99 } })],
    ['backbone checksum', (m) => ({ ...m, backbone: { ...m.backbone, checksum: 'd'.repeat(64) } })],
    ['expiry (pushed out)', (m) => ({ ...m, expiresAt: '2027-12-08T01:00:00.000Z' })],
  ])('refuses a manifest whose %s was changed after signing', (_what, tamper) => {
    const signed = signManifest(fields(), privateKey);
    const sut = verifySignedManifest({ ...signed, manifest: tamper(signed.manifest) }, trusted, NOW);
    expect(sut).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a manifest with a field added after signing', () => {
    const signed = signManifest(fields(), privateKey);
    const sut = verifySignedManifest({ ...signed, manifest: { ...signed.manifest, extra: 1 } }, trusted, NOW);
    expect(sut).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('refuses a manifest signed by a key the device does not trust', () => {
    const sut = verifySignedManifest(signManifest(fields(), other.privateKey), trusted, NOW);
    expect(sut).toMatchObject({ ok: false, reason: 'unknown_key' });
  });

  it('refuses a manifest that names a trusted key id but was signed by another key', () => {
    const forged = signManifest(fields(), other.privateKey);
    const manifest = { ...forged.manifest, keyId: keyIdOf(publicKey) };
    const signature = sign(null, Buffer.from(canonicalJson(manifest)), other.privateKey).toString('base64');
    expect(verifySignedManifest({ manifest, signature }, trusted, NOW)).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('refuses an expired manifest from the instant of its expiry on', () => {
    const signed = signManifest(fields(), privateKey);
    expect(verifySignedManifest(signed, trusted, new Date(Date.parse(signed.manifest.expiresAt) - 1)).ok).toBe(true);
    expect(verifySignedManifest(signed, trusted, new Date(signed.manifest.expiresAt))).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses what is not a signed manifest', () => {
    expect(verifySignedManifest('nope', trusted, NOW)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(() => signManifest(fields({ expiresAt: '2026-12-01T00:00:00.000Z' }), privateKey)).toThrow(/expiresAt/);
  });
});

describe(parseTrustedKeys.name, () => {
  const a = generateKeyPairSync('ed25519').publicKey;
  const b = generateKeyPairSync('ed25519').publicKey;

  it('reads keys as base64 SPKI or raw 32 bytes, with comments and blank lines', () => {
    const raw = Buffer.from(a.export({ format: 'jwk' }).x as string, 'base64url').toString('base64');
    const sut = parseTrustedKeys(`# fleet keys\n\n${keyIdOf(a)} ${raw}\n${keyIdOf(b)}   ${publicKeyBase64(b)}  # rotated in\n`);
    expect([...sut.keys()]).toEqual([keyIdOf(a), keyIdOf(b)]);
    expect(keyIdOf(sut.get(keyIdOf(a))!)).toBe(keyIdOf(a));
  });

  it('names the line of a key id that does not match its key', () => {
    expect(() => parseTrustedKeys(`${keyIdOf(a)} ${publicKeyBase64(a)}\n${keyIdOf(a)} ${publicKeyBase64(b)}`, 'keys.txt')).toThrow(/keys\.txt line 2: key id .* does not match/);
  });

  it('refuses keys that are not Ed25519', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expect(() => parsePublicKey(rsa.export({ type: 'spki', format: 'pem' }).toString())).toThrow(/Ed25519/);
    expect(() => parsePublicKey('not a key!')).toThrow(/PEM or base64/);
  });
});

describe('RolloutStatusSchema', () => {
  const base = { v: 1, deviceId: 'dev-1', offerId: 'r1', modelVersion: 'grocery-7', at: NOW.toISOString(), activeVersion: 'grocery-6' };

  it('requires a reason exactly for rejected and rolled_back', () => {
    expect(RolloutStatusSchema.safeParse({ ...base, state: 'rejected', reason: 'expired' }).success).toBe(true);
    expect(RolloutStatusSchema.safeParse({ ...base, state: 'rejected' }).success).toBe(false);
    expect(RolloutStatusSchema.safeParse({ ...base, state: 'active', reason: 'expired' }).success).toBe(false);
  });
});

describe(verifyModelCommand.name, () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keys = new Map([[keyIdOf(publicKey), publicKey]]);
  const cmd = () =>
    signModelCommand({ deviceId: 'dev-1', offerId: 'ro_1', command: 'rollback', modelVersion: 'grocery-7', issuedAt: '2026-12-01T01:59:00.000Z', expiresAt: '2026-12-01T02:09:00.000Z' }, privateKey);

  it('accepts a command signed by a release key, for this device, not expired, each with its own nonce', () => {
    const a = cmd();
    expect(verifyModelCommand(a, keys, 'dev-1', NOW)).toEqual({ ok: true, command: a });
    expect(cmd().nonce).not.toBe(a.nonce);
  });

  it('refuses forged, tampered, foreign, expired and unsigned commands', () => {
    const stranger = generateKeyPairSync('ed25519').privateKey;
    const forged = signModelCommand({ ...cmd(), command: 'rollback' }, stranger);
    expect(verifyModelCommand(forged, keys, 'dev-1', NOW)).toMatchObject({ ok: false, reason: 'unknown_key' });
    expect(verifyModelCommand({ ...cmd(), command: 'cancel' }, keys, 'dev-1', NOW)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(verifyModelCommand({ ...cmd(), expiresAt: '2030-01-01T00:00:00.000Z' }, keys, 'dev-1', NOW)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(verifyModelCommand(cmd(), keys, 'dev-2', NOW)).toMatchObject({ ok: false, reason: 'wrong_device' });
    expect(verifyModelCommand(cmd(), keys, 'dev-1', new Date('2026-12-01T02:10:00.000Z'))).toMatchObject({ ok: false, reason: 'expired' });
    const { signature: _s, ...unsigned } = cmd();
    expect(verifyModelCommand(unsigned, keys, 'dev-1', NOW)).toMatchObject({ ok: false, reason: 'malformed' });
  });
});

describe(isUnverifiedOfferStatus.name, () => {
  it('tells offers that failed verification from refusals that count against a rollout', () => {
    expect(isUnverifiedOfferStatus({ state: 'rejected', reason: 'unknown_key' })).toBe(true);
    expect(isUnverifiedOfferStatus({ state: 'rejected', reason: 'offer_mismatch' })).toBe(true);
    expect(isUnverifiedOfferStatus({ state: 'rejected', reason: 'shadow_gate' })).toBe(false);
    expect(isUnverifiedOfferStatus({ state: 'rolled_back', reason: 'health_regression' })).toBe(false);
  });
});
