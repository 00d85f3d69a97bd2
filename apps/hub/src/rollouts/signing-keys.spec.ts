import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import {
  acceptKeyList,
  currentReleaseKeys,
  keyIdOf,
  labelsHash,
  parseTrustedKeys,
  signKeyList,
  verifyModelCommand,
  verifySignedManifest,
  type SignedKeyList,
  type UnsignedManifest,
} from '@shelfsight/contracts';
import type { HubConfig } from '../config/hub-config';
import type { ReleaseKeysRepository } from './release-keys.repository';
import { DEMO_ROOT_KEY, GENERATED_KEYS_DIR, GENERATED_RELEASE_KEY, SigningKeys } from './signing-keys';

/** The key-list table on a list (the repository is the boundary). */
class MemoryLists {
  readonly rows: SignedKeyList[] = [];
  async currentList(rootKeyId: string): Promise<SignedKeyList | undefined> {
    return this.rows.filter((r) => r.list.root.keyId === rootKeyId).sort((a, b) => b.list.version - a.list.version)[0];
  }
  async saveList(signed: SignedKeyList): Promise<boolean> {
    if (this.rows.some((r) => r.list.root.keyId === signed.list.root.keyId && r.list.version === signed.list.version)) return false;
    this.rows.push(signed);
    return true;
  }
}

const fields: UnsignedManifest = {
  modelVersion: 'v7',
  offerId: 'ro_1',
  modelLine: 'default',
  releaseCounter: 3,
  backbone: { id: 'stand-in', checksum: 'a'.repeat(64) },
  labelsHash: labelsHash(['milk', 'juice']),
  artifact: { sha256: 'b'.repeat(64), length: 1234 },
  issuedAt: '2026-12-01T00:00:00.000Z',
  expiresAt: '2026-12-08T00:00:00.000Z',
};
const NOW = new Date('2026-12-01T01:00:00.000Z');
const ed = () => generateKeyPairSync('ed25519').privateKey;
const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const listOf = (root: KeyObject, version: number, keys: KeyObject[], expiresAt = '2099-01-01T00:00:00.000Z') =>
  signKeyList({ version, issuedAt: '2026-01-01T00:00:00.000Z', expiresAt, keys: keys.map((publicKey) => ({ publicKey })) }, root);

describe(SigningKeys.name, () => {
  let repo: MemoryLists;
  let published: SignedKeyList[];
  let dataDir: string;
  const start = async (config: Partial<HubConfig> = {}) => {
    const sut = new SigningKeys({ dataDir, ...config } as HubConfig, repo as unknown as ReleaseKeysRepository, { sendReleaseKeys: async (l) => void published.push(l) });
    await sut.onModuleInit();
    return sut;
  };
  /** What a device provisioned with the hub's trusted-keys file makes of the published list. */
  const deviceKeys = (sut: SigningKeys) => {
    const v = acceptKeyList(published.at(-1), undefined, parseTrustedKeys(sut.trustedKeysFile()), NOW);
    if (!v.ok) throw new Error(v.message);
    return currentReleaseKeys(v, NOW);
  };

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => {
    repo = new MemoryLists();
    published = [];
    dataDir = mkdtempSync(join(tmpdir(), 'signing-keys-'));
  });

  it('for a demo, generates the release key and a demo root in DATA_DIR (mode 0600), never in the database, and keeps them across restarts', async () => {
    const first = await start();
    const dir = join(dataDir, GENERATED_KEYS_DIR);
    expect(statSync(join(dir, GENERATED_RELEASE_KEY)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, DEMO_ROOT_KEY)).mode & 0o777).toBe(0o600);
    // The database holds only the public, signed list.
    expect(JSON.stringify(repo.rows)).not.toMatch(/PRIVATE KEY/);
    expect(repo.rows).toHaveLength(1);
    expect(repo.rows[0]!.list.keys.map((k) => k.keyId)).toEqual([first.keyId]);

    const second = await start();
    expect(second.keyId).toBe(first.keyId);
    expect(repo.rows).toHaveLength(1);
    expect(published).toHaveLength(2);
    // A device trusting the root from the trusted-keys file verifies what the hub signs.
    expect(verifySignedManifest(second.sign(fields), deviceKeys(second), NOW).ok).toBe(true);
  });

  it('a new generated release key gets a new demo list version that no longer names the old key', async () => {
    const first = await start();
    const { rmSync } = await import('node:fs');
    rmSync(join(dataDir, GENERATED_KEYS_DIR, GENERATED_RELEASE_KEY));
    const second = await start();
    expect(second.keyId).not.toBe(first.keyId);
    expect(second.keyList().list.version).toBe(2);
    expect([...deviceKeys(second).keys()]).toEqual([second.keyId]);
  });

  it('signs with ROLLOUT_SIGNING_KEY under the list of ROLLOUT_KEY_LIST_FILE, and signs commands with it', async () => {
    const root = ed();
    const release = ed();
    const file = join(dataDir, 'key-list.json');
    writeFileSync(file, JSON.stringify(listOf(root, 4, [release])));
    const sut = await start({ rolloutSigningKey: pem(release), rolloutKeyListFile: file });
    expect(sut.keyId).toBe(keyIdOf(release));
    expect(sut.trustedKeysFile()).toContain(keyIdOf(root));
    expect(verifySignedManifest(sut.sign(fields), deviceKeys(sut), NOW).ok).toBe(true);
    const cmd = sut.signCommand({ deviceId: 'dev-1', offerId: 'ro_1', command: 'rollback', modelVersion: 'v7', issuedAt: NOW.toISOString(), expiresAt: new Date(NOW.getTime() + 60_000).toISOString() });
    expect(verifyModelCommand(cmd, deviceKeys(sut), 'dev-1', NOW).ok).toBe(true);
  });

  it('publishes a newer list from the same root (a revocation); refuses the same version, an older one, another root and a tampered one', async () => {
    const root = ed();
    const [leaked, next] = [ed(), ed()];
    const file = join(dataDir, 'key-list.json');
    writeFileSync(file, JSON.stringify(listOf(root, 1, [leaked, next])));
    const sut = await start({ rolloutSigningKey: pem(next), rolloutKeyListFile: file });

    await expect(sut.publishList(listOf(root, 1, [next]))).rejects.toThrow(/not newer/);
    await expect(sut.publishList(listOf(ed(), 5, [next]))).rejects.toThrow(/does not trust/);
    const tampered = listOf(root, 6, [next]);
    await expect(sut.publishList({ ...tampered, list: { ...tampered.list, version: 7 } })).rejects.toThrow(/signature/);
    await expect(sut.publishList(listOf(root, 8, [next], '2026-02-01T00:00:00.000Z'))).rejects.toThrow(/expired/);

    const res = await sut.publishList(listOf(root, 2, [next]));
    expect(res).toMatchObject({ list: { version: 2 }, signsWithListedKey: true });
    expect(published.at(-1)!.list.version).toBe(2);
    expect(deviceKeys(sut).has(keyIdOf(leaked))).toBe(false);
    // A restart with the older file keeps the newer list.
    expect((await start({ rolloutSigningKey: pem(next), rolloutKeyListFile: file })).keyList().list.version).toBe(2);
    // A list that drops the hub's own key is published, and said so.
    expect(await sut.publishList(listOf(root, 3, [leaked]))).toMatchObject({ signsWithListedKey: false });
  });

  it('ignores a list someone wrote into the database without the root: the hub neither serves it nor hands out its root', async () => {
    const first = await start();
    const intruder = ed();
    const forged = listOf(intruder, 50, [intruder]);
    const rootId = first.keyList().list.root.keyId;
    repo.rows.push({ ...forged, list: { ...forged.list, root: { ...forged.list.root, keyId: rootId } } });
    const sut = await start();
    expect(sut.keyList().list.version).toBe(1);
    expect(sut.trustedKeysFile()).toContain(first.keyList().list.root.publicKey);
    expect(sut.trustedKeysFile()).not.toContain(forged.list.root.publicKey);
    expect([...deviceKeys(sut).keys()]).toEqual([sut.keyId]);
  });

  it('refuses a key list file that is not a signed list', async () => {
    const file = join(dataDir, 'key-list.json');
    writeFileSync(file, '{"list":{}}');
    await expect(start({ rolloutKeyListFile: file })).rejects.toThrow(/ROLLOUT_KEY_LIST_FILE/);
  });
});
