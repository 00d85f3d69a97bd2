import { Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import type { BlobStore } from '../blobs/blob-store';
import { HubMetrics } from '../metrics/hub-metrics';
import type { ModelsRepository, ModelVersionRow } from '../models/models.repository';
import type { DeviceAuthResult, DeviceHttpAuth } from './device-http-auth';
import { DownloadTokens } from './download-tokens';
import { RolloutArtifactsService } from './rollout-artifacts.service';
import type { RolloutsRepository } from './rollouts.repository';
import { ArtifactAccessError } from './rollouts.error';

type Access = Awaited<ReturnType<RolloutsRepository['artifactAccess']>>;

/** The registry, the devices' credentials and the rollouts' reach, and the blob store, at their boundaries. */
class World {
  readonly versions = new Map<string, { artifact_sha256: string; artifact_bytes: bigint }>();
  readonly access = new Map<string, Access>();
  readonly passwords = new Map<string, string>();
  readonly blobs = new Map<string, Buffer>();
  versionLookups = 0;
  blobGets = 0;

  readonly models: Pick<ModelsRepository, 'findVersion'> = {
    findVersion: (v) => {
      this.versionLookups++;
      return Promise.resolve(this.versions.get(v) as ModelVersionRow | undefined);
    },
  };
  readonly repo: Pick<RolloutsRepository, 'artifactAccess'> = {
    artifactAccess: (deviceId, version) => Promise.resolve(this.access.get(`${deviceId}/${version}`) ?? { credential: 'none', targeted: false }),
  };
  readonly deviceAuth: Pick<DeviceHttpAuth, 'check'> = {
    check: (authorization): Promise<DeviceAuthResult> => {
      const m = /^Basic (.+)$/.exec(authorization ?? '');
      if (!m) return Promise.resolve({ ok: false, reason: 'missing_credentials' });
      const [user, pass] = Buffer.from(m[1]!, 'base64').toString().split(':');
      if (!this.passwords.has(user!)) return Promise.resolve({ ok: false, reason: 'unknown_device' });
      return Promise.resolve(this.passwords.get(user!) === pass ? { ok: true, deviceId: user! } : { ok: false, reason: 'bad_password' });
    },
  };
  readonly store: Pick<BlobStore, 'get' | 'open'> = {
    get: (sha) => {
      this.blobGets++;
      return Promise.resolve(this.blobs.get(sha));
    },
    open: (sha, range) => {
      const b = this.blobs.get(sha);
      return Promise.resolve(b && { stream: Readable.from([range ? b.subarray(range.start, range.end + 1) : b]), bytes: b.length });
    },
  };
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const read = async (s: Readable) => Buffer.concat(await s.toArray());

describe(RolloutArtifactsService.name, () => {
  let world: World;
  let tokens: DownloadTokens;
  let metrics: HubMetrics;
  let now: Date;
  let sut: RolloutArtifactsService;
  /** The refusal's status and reason counted, or 'allowed'. */
  const outcome = async (call: () => Promise<unknown>) => {
    const before = await metrics.registry.getSingleMetricAsString('shelfsight_rollout_artifact_refused_total');
    return call().then(
      () => 'allowed',
      async (e: ArtifactAccessError) => {
        const after = await metrics.registry.getSingleMetricAsString('shelfsight_rollout_artifact_refused_total');
        const counted = after.split('\n').find((l) => l.includes('{') && !before.includes(l));
        return `${e.getStatus()} ${/reason="(\w+)"/.exec(counted ?? '')?.[1] ?? 'uncounted'}`;
      },
    );
  };

  beforeAll(() => jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined));
  beforeEach(() => {
    world = new World();
    world.versions.set('v2', { artifact_sha256: 'a'.repeat(64), artifact_bytes: 5n });
    world.blobs.set('a'.repeat(64), Buffer.from('HEAD!'));
    world.passwords.set('cam-1', 'pw1');
    world.access.set('cam-1/v2', { credential: 'enabled', targeted: true });
    tokens = new DownloadTokens({ rolloutDownloadTokenSecret: 'spec-secret', dataDir: '/nonexistent' });
    metrics = new HubMetrics();
    now = new Date('2026-12-01T00:00:00Z');
    sut = new RolloutArtifactsService(
      world.deviceAuth as DeviceHttpAuth,
      tokens,
      world.repo as RolloutsRepository,
      world.models as ModelsRepository,
      metrics,
      world.store as BlobStore,
      () => now,
    );
  });

  it('lets a targeted device download by its offer’s token or its credential, and an operator by the principal the guard admitted', async () => {
    const token = tokens.issue('cam-1', 'v2', new Date('2026-12-01T01:00:00Z'));
    expect(await sut.authorize('v2', { authorization: `Bearer ${token}` })).toEqual({ sha256: 'a'.repeat(64), bytes: 5, reader: 'device:cam-1' });
    expect((await sut.authorize('v2', { authorization: basic('cam-1', 'pw1') })).reader).toBe('device:cam-1');
    expect((await sut.authorize('v2', { principal: 'key:ops' })).reader).toBe('key:ops');
  });

  it('refuses with 401 a bad, expired or other version’s token, a missing or wrong credential, and counts each by reason', async () => {
    const token = tokens.issue('cam-1', 'v2', new Date('2026-12-01T01:00:00Z'));
    expect(await outcome(() => sut.authorize('v2', { authorization: `Bearer ${token}x` }))).toBe('401 bad_token');
    expect(await outcome(() => sut.authorize('v3', { authorization: `Bearer ${token}` }))).toBe('401 bad_token');
    now = new Date('2026-12-01T01:00:00Z');
    expect(await outcome(() => sut.authorize('v2', { authorization: `Bearer ${token}` }))).toBe('401 expired_token');
    expect(await outcome(() => sut.authorize('v2', { authorization: undefined }))).toBe('401 missing_credentials');
    expect(await outcome(() => sut.authorize('v2', { authorization: basic('cam-1', 'nope') }))).toBe('401 bad_password');
  });

  it('refuses a device disabled since its offer even with a valid token (401), and one no unfinished rollout reached (403)', async () => {
    const token = tokens.issue('cam-1', 'v2', new Date('2026-12-01T01:00:00Z'));
    world.access.set('cam-1/v2', { credential: 'disabled', targeted: true });
    expect(await outcome(() => sut.authorize('v2', { authorization: `Bearer ${token}` }))).toBe('401 disabled');
    world.access.set('cam-1/v2', { credential: 'enabled', targeted: false });
    expect(await outcome(() => sut.authorize('v2', { authorization: `Bearer ${token}` }))).toBe('403 not_targeted');
    const ghost = tokens.issue('ghost', 'v2', new Date('2026-12-01T01:00:00Z'));
    expect(await outcome(() => sut.authorize('v2', { authorization: `Bearer ${ghost}` }))).toBe('401 unknown_device');
  });

  it('answers 404 for a version not in the registry, and remembers a registered version’s artifact facts', async () => {
    expect(await outcome(() => sut.authorize('v9', { principal: 'key:ops' }))).toBe('404 uncounted');
    await sut.authorize('v2', { principal: 'key:ops' });
    await sut.authorize('v2', { principal: 'key:ops' });
    expect(world.versionLookups).toBe(2); // v9 once, v2 once
  });

  it('serves a small artifact from memory after its first read, whole or by range, counting the bytes sent', async () => {
    const sha = 'a'.repeat(64);
    expect((await read(await sut.open(sha, 5))).toString()).toBe('HEAD!');
    expect((await read(await sut.open(sha, 5, { start: 1, end: 2 }))).toString()).toBe('EA');
    expect(world.blobGets).toBe(1);
    expect(await metrics.registry.getSingleMetricAsString('shelfsight_rollout_artifact_bytes_total')).toMatch(/ 7$/m);
  });

  it('answers 404 when the artifact’s blob is missing', async () => {
    await expect(sut.open('b'.repeat(64), 5)).rejects.toThrow(ArtifactAccessError);
    await expect(sut.open('b'.repeat(64), 5)).rejects.toThrow(/is missing/);
  });
});
