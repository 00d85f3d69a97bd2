import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { SoloClusterBus } from '../cluster/cluster-bus';
import type { HubConfig } from '../config/hub-config';
import { ApiKeyNotFoundError, ApiKeyTooPowerfulError, BootstrapKeyError } from './api-keys.error';
import type { ApiKeyRow, ApiKeysRepository, NewApiKey } from './api-keys.repository';
import { ApiKeysService, FIRST_KEY_FILE, KEY_REVOKED, type KeyPrincipal } from './api-keys.service';

/** The api_keys table at its boundary; `touches` records each last_used_at write. */
class FakeKeys implements Pick<ApiKeysRepository, 'insert' | 'insertFirst' | 'find' | 'list' | 'revoke' | 'touch'> {
  readonly rows = new Map<string, ApiKeyRow>();
  readonly touches: Array<[string, Date]> = [];
  finds = 0;

  insert(k: NewApiKey): Promise<ApiKeyRow> {
    const row: ApiKeyRow = { id: k.id, name: k.name, role: k.role, secret_sha256: k.secretSha256, created_by: k.createdBy, created_at: new Date(0), expires_at: k.expiresAt, revoked_at: null, last_used_at: null };
    this.rows.set(k.id, row);
    return Promise.resolve(row);
  }

  insertFirst(k: NewApiKey): Promise<ApiKeyRow | undefined> {
    return this.rows.size > 0 ? Promise.resolve(undefined) : this.insert(k);
  }

  find(id: string): Promise<ApiKeyRow | undefined> {
    this.finds++;
    const row = this.rows.get(id);
    return Promise.resolve(row && { ...row });
  }

  list(): Promise<ApiKeyRow[]> {
    return Promise.resolve([...this.rows.values()]);
  }

  revoke(id: string): Promise<ApiKeyRow | undefined> {
    const row = this.rows.get(id);
    if (row) row.revoked_at = new Date(0);
    return Promise.resolve(row);
  }

  touch(id: string, at: Date): Promise<void> {
    this.touches.push([id, at]);
    return Promise.resolve();
  }
}

/** One hub of a cluster: records what it sends, and lets the test deliver what other replicas send. */
class FakeClusterBus extends SoloClusterBus {
  readonly sent: Array<[string, unknown]> = [];
  readonly handlers = new Map<string, (body: unknown) => void>();
  resync?: () => void;

  override send(kind: string, body: unknown): void {
    this.sent.push([kind, body]);
  }

  override on(kind: string, handler: (body: unknown) => void): () => void {
    this.handlers.set(kind, handler);
    return () => undefined;
  }

  override onResync(handler: () => void): () => void {
    this.resync = handler;
    return () => undefined;
  }
}

const admin: KeyPrincipal = { id: 'key:root', role: 'admin', keyId: 'root', expiresAt: null };

describe(ApiKeysService.name, () => {
  let repo: FakeKeys;
  let cluster: FakeClusterBus;
  let now: number;
  let dataDir: string;
  let sut: ApiKeysService;
  const make = (config: Partial<HubConfig> = {}) => new ApiKeysService(repo as unknown as ApiKeysRepository, { dataDir, ...config } as HubConfig, () => now, cluster);

  beforeAll(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  beforeEach(() => {
    repo = new FakeKeys();
    cluster = new FakeClusterBus();
    now = Date.parse('2026-12-01T00:00:00Z');
    dataDir = mkdtempSync(join(tmpdir(), 'api-keys-spec-'));
    sut = make();
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('authenticates a created key as its role, and refuses a wrong secret, an unknown id and a malformed key, each by its reason', async () => {
    const { key, id } = await sut.create({ name: 'ops', role: 'operator' }, admin);
    expect(await sut.authenticate(key)).toEqual({ id: `key:${id}`, role: 'operator', keyId: id, expiresAt: null });
    expect(await sut.authenticate(`${key.slice(0, -2)}xx`)).toBe('wrong');
    expect(await sut.authenticate(key.replace(id, '0123456789abcdef'))).toBe('unknown');
    expect(await sut.authenticate('hunter2')).toBe('wrong');
  });

  it('accepts the bootstrap key (HUB_API_KEY) as admin without asking the database', async () => {
    sut = make({ hubApiKey: 'a-long-bootstrap-secret' });
    expect(await sut.authenticate('a-long-bootstrap-secret')).toMatchObject({ role: 'admin', keyId: 'bootstrap' });
    expect(repo.finds).toBe(0);
    await expect(sut.revoke('bootstrap', admin)).rejects.toThrow(BootstrapKeyError);
  });

  it('refuses an expired key from its expiry on (clock injected)', async () => {
    const { key } = await sut.create({ name: 'short', role: 'viewer', expiresAt: '2026-12-01T01:00:00.000Z' }, admin);
    now = Date.parse('2026-12-01T00:59:59.999Z');
    expect(await sut.authenticate(key)).toMatchObject({ role: 'viewer' });
    now = Date.parse('2026-12-01T01:00:00.000Z');
    expect(await sut.authenticate(key)).toBe('expired');
  });

  it('never creates a key stronger or longer-lived than its creator, nor one already expired', async () => {
    const operator: KeyPrincipal = { id: 'key:op', role: 'operator', keyId: 'op', expiresAt: new Date('2026-12-02T00:00:00Z') };
    await expect(sut.create({ name: 'x', role: 'admin' }, operator)).rejects.toThrow(ApiKeyTooPowerfulError);
    await expect(sut.create({ name: 'x', role: 'viewer', expiresAt: '2026-12-03T00:00:00.000Z' }, operator)).rejects.toThrow(/outlives/);
    await expect(sut.create({ name: 'x', role: 'viewer', expiresAt: '2026-11-30T00:00:00.000Z' }, admin)).rejects.toThrow(/in the past/);
    // Without an expiry of its own, the new key inherits the creator's.
    expect(await sut.create({ name: 'x', role: 'viewer' }, operator)).toMatchObject({ expiresAt: '2026-12-02T00:00:00.000Z', createdBy: 'key:op' });
    expect(await sut.create({ name: 'x', role: 'operator' }, admin)).toMatchObject({ expiresAt: null });
  });

  it('a revocation takes effect at once on this hub and is sent to the other replicas', async () => {
    const { key, id } = await sut.create({ name: 'ops', role: 'operator' }, admin);
    await sut.authenticate(key); // now cached
    await sut.revoke(id, admin);
    expect(await sut.authenticate(key)).toBe('revoked');
    expect(cluster.sent).toEqual([[KEY_REVOKED, { id }]]);
    await expect(sut.revoke('0123456789abcdef', admin)).rejects.toThrow(ApiKeyNotFoundError);
  });

  it('trusts a looked-up key for a few seconds only, and drops it at once when another replica says it was revoked', async () => {
    const { key, id } = await sut.create({ name: 'ops', role: 'operator' }, admin);
    await sut.authenticate(key);
    await repo.revoke(id); // revoked by another replica
    expect(await sut.authenticate(key)).toMatchObject({ role: 'operator' }); // cached
    now += 5_001;
    expect(await sut.authenticate(key)).toBe('revoked');

    const other = await sut.create({ name: 'ops2', role: 'operator' }, admin);
    await sut.authenticate(other.key);
    await repo.revoke(other.id);
    cluster.handlers.get(KEY_REVOKED)!({ id: other.id });
    expect(await sut.authenticate(other.key)).toBe('revoked');
  });

  it('drops every cached key when the cluster bus resyncs (a revocation may have been missed)', async () => {
    const { key, id } = await sut.create({ name: 'ops', role: 'operator' }, admin);
    await sut.authenticate(key);
    await repo.revoke(id);
    cluster.resync!();
    expect(await sut.authenticate(key)).toBe('revoked');
  });

  it('records a key’s use at most once a minute', async () => {
    const { key, id } = await sut.create({ name: 'ops', role: 'operator' }, admin);
    await sut.authenticate(key);
    now += 30_000;
    await sut.authenticate(key);
    now += 30_001;
    await sut.authenticate(key);
    expect(repo.touches.map(([k, at]) => [k, at.toISOString()])).toEqual([
      [id, '2026-12-01T00:00:00.000Z'],
      [id, '2026-12-01T00:01:00.001Z'],
    ]);
  });

  it('on a first start without HUB_API_KEY creates one admin key, written to DATA_DIR readable by this user only; never a second', async () => {
    await sut.onApplicationBootstrap();
    const file = join(dataDir, FIRST_KEY_FILE);
    const key = readFileSync(file, 'utf8').trim();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await sut.authenticate(key)).toMatchObject({ role: 'admin' });
    rmSync(file);
    await make().onApplicationBootstrap();
    expect(() => statSync(file)).toThrow();
    await make({ hubApiKey: 'a-long-bootstrap-secret' }).onApplicationBootstrap();
    expect(repo.rows.size).toBe(1);
  });
});
