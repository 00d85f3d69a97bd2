import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { acceptKeyList, currentReleaseKeys, signKeyList, verifyKeyList, type SignedKeyList } from './key-list';
import { DEFAULT_MODEL_LINE } from './rollout';
import { canonicalJson, keyIdOf, labelsHash, publicKeyBase64, signManifest, verifySignedManifest } from './rollout-signing';

const NOW = new Date('2026-12-01T02:00:00.000Z');
const ed = () => generateKeyPairSync('ed25519').privateKey;
const rootsOf = (...keys: KeyObject[]) => new Map(keys.map((k) => [keyIdOf(k), k] as const));

function list(root: KeyObject, version: number, keys: KeyObject[], over: { issuedAt?: string; expiresAt?: string } = {}): SignedKeyList {
  return signKeyList({ version, issuedAt: over.issuedAt ?? '2026-12-01T00:00:00.000Z', expiresAt: over.expiresAt ?? '2027-12-01T00:00:00.000Z', keys: keys.map((publicKey) => ({ publicKey })) }, root);
}

const manifestBy = (key: KeyObject) =>
  signManifest(
    {
      modelVersion: 'grocery-7',
      offerId: 'ro_1',
      modelLine: DEFAULT_MODEL_LINE,
      releaseCounter: 7,
      backbone: { id: 'mobilenet', checksum: 'a'.repeat(64) },
      labelsHash: labelsHash(['apples']),
      artifact: { sha256: 'b'.repeat(64), length: 10 },
      issuedAt: '2026-12-01T01:00:00.000Z',
      expiresAt: '2026-12-08T01:00:00.000Z',
    },
    key,
  );

describe('release key lists', () => {
  const root = ed();
  const roots = rootsOf(root);
  const release1 = ed();
  const release2 = ed();

  it('a list signed by a trusted root is taken, and its keys verify manifests', () => {
    const sut = acceptKeyList(list(root, 1, [release1]), undefined, roots, NOW);
    if (!sut.ok) throw new Error(sut.message);
    expect([...sut.keys.keys()]).toEqual([keyIdOf(release1)]);
    expect(verifySignedManifest(manifestBy(release1), currentReleaseKeys(sut, NOW), NOW).ok).toBe(true);
  });

  it('a higher version replaces the held one; the same or a lower version is refused', () => {
    const held = { version: 2 };
    expect(acceptKeyList(list(root, 3, [release1]), held, roots, NOW).ok).toBe(true);
    expect(acceptKeyList(list(root, 2, [release1]), held, roots, NOW)).toMatchObject({ ok: false, reason: 'not_newer' });
    expect(acceptKeyList(list(root, 1, [release1, release2]), held, roots, NOW)).toMatchObject({ ok: false, reason: 'not_newer' });
  });

  it('an expired list is refused, and a held list that expired grants no keys', () => {
    const old = list(root, 5, [release1], { issuedAt: '2026-01-01T00:00:00.000Z', expiresAt: '2026-06-01T00:00:00.000Z' });
    expect(acceptKeyList(old, undefined, roots, NOW)).toMatchObject({ ok: false, reason: 'expired' });
    const v = verifyKeyList(old, roots);
    if (!v.ok) throw new Error(v.message);
    expect(currentReleaseKeys(v, NOW).size).toBe(0);
    expect(currentReleaseKeys(v, new Date('2026-03-01T00:00:00.000Z')).size).toBe(1);
  });

  it('a list signed by another root is refused, even one that names that root in its body', () => {
    const stranger = ed();
    expect(acceptKeyList(list(stranger, 9, [release1]), undefined, roots, NOW)).toMatchObject({ ok: false, reason: 'unknown_root' });
    // A release key cannot stand in for the root.
    expect(acceptKeyList(list(release1, 9, [release2]), undefined, roots, NOW)).toMatchObject({ ok: false, reason: 'unknown_root' });
  });

  it('a tampered list is refused: a key added, the version raised, the expiry moved', () => {
    const good = list(root, 1, [release1]);
    const extra = ed();
    const added = structuredClone(good);
    added.list.keys.push({ keyId: keyIdOf(extra), publicKey: publicKeyBase64(extra) });
    expect(acceptKeyList(added, undefined, roots, NOW)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(acceptKeyList({ ...good, list: { ...good.list, version: 99 } }, undefined, roots, NOW)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(acceptKeyList({ ...good, list: { ...good.list, expiresAt: '2099-01-01T00:00:00.000Z' } }, undefined, roots, NOW)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(acceptKeyList({ list: good.list }, undefined, roots, NOW)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('a key id that does not match its key is refused even under a good signature', () => {
    const good = list(root, 1, [release1]);
    const mislabelled = { ...good.list, keys: [{ keyId: keyIdOf(release2), publicKey: good.list.keys[0]!.publicKey }] };
    const forged = { list: mislabelled, signature: sign(null, Buffer.from(canonicalJson(mislabelled), 'utf8'), root).toString('base64') };
    expect(verifyKeyList(forged, roots, NOW)).toMatchObject({ ok: false, reason: 'malformed', message: expect.stringMatching(/does not match its key/) });
  });

  it('a key removed from the list: its manifests are refused, the remaining key still verifies', () => {
    const v1 = acceptKeyList(list(root, 1, [release1, release2]), undefined, roots, NOW);
    if (!v1.ok) throw new Error(v1.message);
    expect(verifySignedManifest(manifestBy(release1), currentReleaseKeys(v1, NOW), NOW).ok).toBe(true);
    const v2 = acceptKeyList(list(root, 2, [release2]), v1.list, roots, NOW);
    if (!v2.ok) throw new Error(v2.message);
    expect(verifySignedManifest(manifestBy(release1), currentReleaseKeys(v2, NOW), NOW)).toMatchObject({ ok: false, reason: 'unknown_key' });
    expect(verifySignedManifest(manifestBy(release2), currentReleaseKeys(v2, NOW), NOW).ok).toBe(true);
    // And the revoking list cannot be undone by replaying v1.
    expect(acceptKeyList(list(root, 1, [release1, release2]), v2.list, roots, NOW)).toMatchObject({ ok: false, reason: 'not_newer' });
  });
});
