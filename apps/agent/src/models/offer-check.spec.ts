import { generateKeyPairSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { keyIdOf, labelsHash, signManifest, type UnsignedManifest } from '@shelfsight/contracts';
import { checkManifest, type DeviceBackbone } from './offer-check';
import { TrustFileError, TrustStore } from './trust-store';

const NOW = new Date('2026-12-01T02:00:00.000Z');
const BACKBONE: DeviceBackbone = { id: 'mobilenet_v1_050_224', checksum: 'a'.repeat(64) };

function fields(over: Partial<UnsignedManifest> = {}): UnsignedManifest {
  return {
    modelVersion: 'grocery-7',
    releaseCounter: 7,
    backbone: { id: BACKBONE.id, checksum: BACKBONE.checksum! },
    labelsHash: labelsHash(['apples', 'bananas']),
    artifact: { sha256: 'b'.repeat(64), length: 1234 },
    issuedAt: '2026-12-01T01:00:00.000Z',
    expiresAt: '2026-12-08T01:00:00.000Z',
    ...over,
  };
}

describe(checkManifest.name, () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keys = new Map([[keyIdOf(publicKey), publicKey]]);
  let dir: string;
  let trust: TrustStore;
  const check = (signed: unknown, backbone = BACKBONE, now = NOW) => checkManifest(signed, { keys, trust, backbone, now });

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'offer-check-'));
    trust = await TrustStore.open(dir);
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  it('accepts a manifest signed by a trusted key for this backbone with a new counter', () => {
    expect(check(signManifest(fields(), privateKey))).toMatchObject({ ok: true, manifest: { modelVersion: 'grocery-7', releaseCounter: 7 } });
  });

  it('refuses a tampered manifest, an unknown key and an expired manifest', () => {
    const signed = signManifest(fields(), privateKey);
    expect(check({ ...signed, manifest: { ...signed.manifest, artifact: { sha256: 'c'.repeat(64), length: 1234 } } })).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(check(signManifest(fields(), generateKeyPairSync('ed25519').privateKey))).toMatchObject({ ok: false, reason: 'unknown_key' });
    expect(check(signed, BACKBONE, new Date('2026-12-09T00:00:00.000Z'))).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a head for another backbone, or a backbone with another checksum, or when the device cannot say', () => {
    const signed = signManifest(fields(), privateKey);
    expect(check(signed, { ...BACKBONE, id: 'efficientnet' })).toMatchObject({ ok: false, reason: 'foreign_backbone' });
    expect(check(signed, { ...BACKBONE, checksum: 'f'.repeat(64) })).toMatchObject({ ok: false, reason: 'foreign_backbone' });
    expect(check(signed, { ...BACKBONE, checksum: undefined })).toMatchObject({ ok: false, reason: 'foreign_backbone', message: expect.stringContaining('checksum unknown') });
  });

  it('refuses a counter not above the trusted one, across a restart, per (backbone, label list)', async () => {
    await trust.record(signManifest(fields(), privateKey).manifest);
    trust = await TrustStore.open(dir); // a restart reads it back
    expect(check(signManifest(fields({ releaseCounter: 7 }), privateKey))).toMatchObject({ ok: false, reason: 'replayed_counter' });
    expect(check(signManifest(fields({ releaseCounter: 3, modelVersion: 'grocery-3' }), privateKey))).toMatchObject({ ok: false, reason: 'replayed_counter' });
    expect(check(signManifest(fields({ releaseCounter: 8 }), privateKey)).ok).toBe(true);
    // Another label list counts on its own.
    expect(check(signManifest(fields({ releaseCounter: 1, labelsHash: labelsHash(['milk']) }), privateKey)).ok).toBe(true);
  });
});

describe(TrustStore.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'trust-store-'));
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));
  const m = (releaseCounter: number) => ({ backbone: { id: 'bb', checksum: 'a'.repeat(64) }, labelsHash: 'b'.repeat(64), releaseCounter });

  it('never lowers a counter', async () => {
    const sut = await TrustStore.open(dir);
    await sut.record(m(5));
    await sut.record(m(2));
    expect((await TrustStore.open(dir)).trusted(m(0))).toBe(5);
  });

  it('refuses to start from a damaged file instead of trusting from zero', async () => {
    await (await TrustStore.open(dir)).record(m(5));
    await fsp.writeFile(path.join(dir, 'rollout', 'trusted.json'), '{"v":1,"coun');
    await expect(TrustStore.open(dir)).rejects.toThrow(TrustFileError);
  });
});
