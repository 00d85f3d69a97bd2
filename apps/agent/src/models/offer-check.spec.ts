import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_MODEL_LINE, keyIdOf, labelsHash, signKeyList, signManifest, type UnsignedManifest } from '@shelfsight/contracts';
import { checkManifest, type DeviceBackbone } from './offer-check';
import { TrustFileError, TrustStore } from './trust-store';

const NOW = new Date('2026-12-01T02:00:00.000Z');
const BACKBONE: DeviceBackbone = { id: 'mobilenet_v1_050_224', checksum: 'a'.repeat(64) };
const ed = () => generateKeyPairSync('ed25519').privateKey;
const rootsOf = (k: KeyObject) => new Map([[keyIdOf(k), k]]);

function fields(over: Partial<UnsignedManifest> = {}): UnsignedManifest {
  return {
    modelVersion: 'grocery-7',
    offerId: 'ro_1',
    modelLine: DEFAULT_MODEL_LINE,
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
  const root = ed();
  const check = (signed: unknown, backbone = BACKBONE, now = NOW, offerId = 'ro_1') => checkManifest(signed, offerId, { keys, trust, backbone, now });

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'offer-check-'));
    trust = await TrustStore.open(dir, rootsOf(root), DEFAULT_MODEL_LINE);
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  it('accepts a manifest signed by a release key for this backbone and offer with a new counter', () => {
    expect(check(signManifest(fields(), privateKey))).toMatchObject({ ok: true, manifest: { modelVersion: 'grocery-7', releaseCounter: 7 } });
  });

  it('refuses a tampered manifest, an unknown key, an expired manifest, and a real manifest under another offer id', () => {
    const signed = signManifest(fields(), privateKey);
    expect(check({ ...signed, manifest: { ...signed.manifest, artifact: { sha256: 'c'.repeat(64), length: 1234 } } })).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(check({ ...signed, manifest: { ...signed.manifest, offerId: 'ro_other' } }, BACKBONE, NOW, 'ro_other')).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(check(signManifest(fields(), ed()))).toMatchObject({ ok: false, reason: 'unknown_key' });
    expect(check(signed, BACKBONE, new Date('2026-12-09T00:00:00.000Z'))).toMatchObject({ ok: false, reason: 'expired' });
    expect(check(signed, BACKBONE, NOW, 'ro_real_rollout')).toMatchObject({ ok: false, reason: 'offer_mismatch' });
  });

  it('refuses a head for another backbone, or a backbone with another checksum, or when the device cannot say', () => {
    const signed = signManifest(fields(), privateKey);
    expect(check(signed, { ...BACKBONE, id: 'efficientnet' })).toMatchObject({ ok: false, reason: 'foreign_backbone' });
    expect(check(signed, { ...BACKBONE, checksum: 'f'.repeat(64) })).toMatchObject({ ok: false, reason: 'foreign_backbone' });
    expect(check(signed, { ...BACKBONE, checksum: undefined })).toMatchObject({ ok: false, reason: 'foreign_backbone', message: expect.stringContaining('checksum unknown') });
  });

  it('refuses a counter not above the activated one on the model line, across a restart, whatever the label list', async () => {
    await trust.record(signManifest(fields(), privateKey).manifest);
    trust = await TrustStore.open(dir, rootsOf(root), DEFAULT_MODEL_LINE); // a restart reads it back
    expect(check(signManifest(fields({ releaseCounter: 7 }), privateKey))).toMatchObject({ ok: false, reason: 'replayed_counter' });
    expect(check(signManifest(fields({ releaseCounter: 3, modelVersion: 'grocery-3' }), privateKey))).toMatchObject({ ok: false, reason: 'replayed_counter' });
    // An older release for another label list is a replay too.
    expect(check(signManifest(fields({ releaseCounter: 5, labelsHash: labelsHash(['milk']) }), privateKey))).toMatchObject({ ok: false, reason: 'replayed_counter' });
    expect(check(signManifest(fields({ releaseCounter: 8, labelsHash: labelsHash(['milk']) }), privateKey)).ok).toBe(true);
    // Another model line counts on its own.
    expect(check(signManifest(fields({ releaseCounter: 1, modelLine: 'freezers' }), privateKey)).ok).toBe(true);
  });
});

describe(TrustStore.name, () => {
  let dir: string;
  const root = ed();
  const open = () => TrustStore.open(dir, rootsOf(root), DEFAULT_MODEL_LINE);
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'trust-store-'));
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));
  const m = (releaseCounter: number) => ({ backbone: { id: 'bb', checksum: 'a'.repeat(64) }, modelLine: DEFAULT_MODEL_LINE, releaseCounter });
  const list = (version: number, signer = root) => signKeyList({ version, issuedAt: '2026-11-01T00:00:00.000Z', expiresAt: '2027-11-01T00:00:00.000Z', keys: [{ publicKey: ed() }] }, signer);

  it('never lowers a counter', async () => {
    const sut = await open();
    await sut.record(m(5));
    await sut.record(m(2));
    expect((await open()).trusted(m(0))).toBe(5);
  });

  it('carries v1 counters (per label list) over to the model line at their highest', async () => {
    await fsp.mkdir(path.join(dir, 'rollout'));
    const scope = (h: string) => `bb@${'a'.repeat(64)}/${h}`;
    await fsp.writeFile(path.join(dir, 'rollout', 'trusted.json'), JSON.stringify({ v: 1, counters: { [scope('1'.repeat(64))]: 4, [scope('2'.repeat(64))]: 9 } }));
    expect((await open()).trusted(m(0))).toBe(9);
  });

  it('holds the newest key list from its root across restarts; an older, equal or foreign one is refused', async () => {
    const sut = await open();
    expect(await sut.offerKeyList(list(2), NOW)).toMatchObject({ ok: true });
    expect(await sut.offerKeyList(list(1), NOW)).toMatchObject({ ok: false, reason: 'not_newer' });
    expect(await sut.offerKeyList(list(2), NOW)).toMatchObject({ ok: false, reason: 'not_newer' });
    expect(await sut.offerKeyList(list(3, ed()), NOW)).toMatchObject({ ok: false, reason: 'unknown_root' });
    const again = await open();
    expect(again.keyList?.list.version).toBe(2);
    expect(await again.offerKeyList(list(1), NOW)).toMatchObject({ ok: false, reason: 'not_newer' });
  });

  it('takes a command nonce once, across restarts', async () => {
    const sut = await open();
    expect(await sut.takeNonce('n1', '2026-12-01T03:00:00.000Z', NOW)).toBe(true);
    expect(await sut.takeNonce('n1', '2026-12-01T03:00:00.000Z', NOW)).toBe(false);
    expect(await (await open()).takeNonce('n1', '2026-12-01T03:00:00.000Z', NOW)).toBe(false);
  });

  it('refuses to start from a damaged file instead of trusting from zero', async () => {
    await (await open()).record(m(5));
    await fsp.writeFile(path.join(dir, 'rollout', 'trusted.json'), '{"v":2,"coun');
    await expect(open()).rejects.toThrow(TrustFileError);
  });
});
