import { generateKeyPairSync } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { ConfigError } from '@shelfsight/common';
import { keyIdOf, labelsHash, parseTrustedKeys, verifySignedManifest, type UnsignedManifest } from '@shelfsight/contracts';
import type { HubConfig } from '../config/hub-config';
import type { RolloutsRepository, SigningKeyRow } from './rollouts.repository';
import { parseSigningKey, SigningKeys } from './signing-keys';

/** The key table on a list (the repository is the boundary). */
class MemoryKeys {
  readonly rows: SigningKeyRow[] = [];
  generated = 0;
  async upsertKey(k: { keyId: string; publicKey: string; privateKey: string | null; source: string }): Promise<void> {
    if (!this.rows.some((r) => r.key_id === k.keyId)) this.rows.push({ key_id: k.keyId, public_key: k.publicKey, private_key: k.privateKey, source: k.source, created_at: new Date(), retired_at: null });
  }
  async generatedKey(generate: () => { keyId: string; publicKey: string; privateKey: string }): Promise<SigningKeyRow> {
    const found = this.rows.find((r) => r.private_key !== null && r.retired_at === null);
    if (found) return found;
    this.generated += 1;
    const k = generate();
    await this.upsertKey({ ...k, source: 'generated' });
    return this.rows.at(-1)!;
  }
  async trustedKeys(): Promise<SigningKeyRow[]> {
    return this.rows.filter((r) => r.retired_at === null);
  }
  async retireKey(keyId: string): Promise<boolean> {
    const row = this.rows.find((r) => r.key_id === keyId && r.retired_at === null);
    if (row) row.retired_at = new Date();
    return row !== undefined;
  }
}

const fields: UnsignedManifest = {
  modelVersion: 'v7',
  releaseCounter: 3,
  backbone: { id: 'stand-in', checksum: 'a'.repeat(64) },
  labelsHash: labelsHash(['milk', 'juice']),
  artifact: { sha256: 'b'.repeat(64), length: 1234 },
  issuedAt: '2026-12-01T00:00:00.000Z',
  expiresAt: '2026-12-08T00:00:00.000Z',
};

describe(SigningKeys.name, () => {
  let repo: MemoryKeys;
  const start = async (rolloutSigningKey?: string) => {
    const sut = new SigningKeys({ rolloutSigningKey } as HubConfig, repo as unknown as RolloutsRepository);
    await sut.onModuleInit();
    return sut;
  };

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => (repo = new MemoryKeys()));

  it('generates a key at first start, keeps it (replicas and restarts sign alike), and lists it in the trusted-keys file', async () => {
    const first = await start();
    const second = await start();

    expect(repo.generated).toBe(1);
    expect(second.keyId).toBe(first.keyId);
    const trusted = parseTrustedKeys(await first.trustedKeysFile());
    expect([...trusted.keys()]).toEqual([first.keyId]);
    const check = verifySignedManifest(second.sign(fields), trusted, new Date('2026-12-02T00:00:00Z'));
    expect(check).toMatchObject({ ok: true, manifest: { keyId: first.keyId, modelVersion: 'v7' } });
  });

  it('signs with ROLLOUT_SIGNING_KEY (PEM or base64 DER) and keeps the old key trusted after a rotation, until it is retired', async () => {
    const old = await start();
    const next = generateKeyPairSync('ed25519').privateKey;
    const pem = next.export({ type: 'pkcs8', format: 'pem' }).toString();
    const rotated = await start(pem);

    expect(rotated.keyId).toBe(keyIdOf(next));
    expect([...parseTrustedKeys(await rotated.trustedKeysFile()).keys()].sort()).toEqual([old.keyId, keyIdOf(next)].sort());
    expect(repo.rows.find((r) => r.key_id === keyIdOf(next))?.private_key).toBeNull(); // a set key is never stored
    const der = await start(next.export({ type: 'pkcs8', format: 'der' }).toString('base64'));
    expect(der.keyId).toBe(keyIdOf(next));

    await expect(rotated.retire(rotated.keyId)).rejects.toThrow(/signs rollouts now/);
    expect(await rotated.retire(old.keyId)).toBe(true);
    expect([...parseTrustedKeys(await rotated.trustedKeysFile()).keys()]).toEqual([keyIdOf(next)]);
  });
});

describe(parseSigningKey.name, () => {
  it('refuses what is not an Ed25519 private key, naming the setting', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

    expect(() => parseSigningKey(rsa)).toThrow(ConfigError);
    expect(() => parseSigningKey(rsa)).toThrow(/ROLLOUT_SIGNING_KEY: expected an Ed25519 key, got rsa/);
    expect(() => parseSigningKey('bm90IGEga2V5')).toThrow(/ROLLOUT_SIGNING_KEY: not a PKCS8 private key/);
  });
});
