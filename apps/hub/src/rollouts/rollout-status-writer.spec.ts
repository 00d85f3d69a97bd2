import { Logger } from '@nestjs/common';
import { SCHEMA_VERSION, type RolloutStatus } from '@shelfsight/contracts';
import { RolloutStatusWriter } from './rollout-status-writer';
import { mergeStatuses, type RolloutsRepository } from './rollouts.repository';

const status = (deviceId: string, state: RolloutStatus['state'], at: string, extra: Partial<RolloutStatus> = {}): RolloutStatus => ({
  v: SCHEMA_VERSION,
  deviceId,
  offerId: 'ro_1',
  modelVersion: 'v2',
  state,
  at,
  activeVersion: state === 'active' ? 'v2' : 'v1',
  ...(state === 'rejected' || state === 'rolled_back' ? { reason: 'operator' as const } : {}),
  ...extra,
});

const health = { frames: 10, p95LatencyMs: 5, meanConfidence: 0.9, baseline: { p95LatencyMs: 5, meanConfidence: 0.9 } };

describe(RolloutStatusWriter.name, () => {
  let sut: RolloutStatusWriter;
  let batches: RolloutStatus[][];
  let failNext: Error[];
  let unknownDevices: Set<string>;

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    batches = [];
    failNext = [];
    unknownDevices = new Set();
    const repo = {
      recordStatuses: async (list: RolloutStatus[]) => {
        const err = failNext.shift();
        if (err) throw err;
        batches.push([...list]);
        await new Promise((r) => setTimeout(r, 5));
        return list.map((s) => (unknownDevices.has(s.deviceId) ? null : 'running'));
      },
    } as unknown as RolloutsRepository;
    sut = new RolloutStatusWriter(repo);
  });

  it('writes a burst of statuses in a few statements and tells each caller its own outcome', async () => {
    unknownDevices.add('dev-7');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => sut.record(status(`dev-${i}`, 'downloading', '2026-12-02T00:00:00.000Z'))));
    expect(batches.length).toBeLessThanOrEqual(2);
    expect(batches.flat()).toHaveLength(50);
    expect(results.filter((state) => state === null)).toHaveLength(1);
    expect(results[7]).toBeNull();
    expect(results[8]).toBe('running');
  });

  it('writes what arrives while a batch is in flight in the next batch', async () => {
    const first = sut.record(status('a', 'offered', '2026-12-02T00:00:00.000Z'));
    await new Promise((r) => setImmediate(r));
    const later = [sut.record(status('b', 'offered', '2026-12-02T00:00:00.000Z')), sut.record(status('c', 'offered', '2026-12-02T00:00:00.000Z'))];
    await Promise.all([first, ...later]);
    expect(batches.map((b) => b.map((s) => s.deviceId))).toEqual([['a'], ['b', 'c']]);
  });

  it('tries a deadlocked batch again, and rejects the callers of a batch that fails otherwise', async () => {
    failNext.push(Object.assign(new Error('deadlock detected'), { code: '40P01' }));
    await expect(sut.record(status('a', 'offered', '2026-12-02T00:00:00.000Z'))).resolves.toBe('running');
    failNext.push(new Error('connection refused'));
    await expect(sut.record(status('b', 'offered', '2026-12-02T00:00:00.000Z'))).rejects.toThrow('connection refused');
    // The writer goes on after a failure.
    await expect(sut.record(status('c', 'offered', '2026-12-02T00:00:00.000Z'))).resolves.toBe('running');
  });
});

describe(mergeStatuses.name, () => {
  it('folds one device’s statuses as applying them in time order would, whatever order they came in', () => {
    const shadow = {
      frames: 3,
      agreement: 1,
      activeMeanConfidence: 0.8,
      candidateMeanConfidence: 0.9,
      histogram: { active: Array(10).fill(0), candidate: Array(10).fill(0) },
      categories: {},
    };
    const merged = mergeStatuses([
      status('d', 'active', '2026-12-02T00:00:03.000Z', { health }),
      status('d', 'offered', '2026-12-02T00:00:00.000Z'),
      status('d', 'shadowing', '2026-12-02T00:00:02.000Z', { shadow }),
      // Same time as `active` but an earlier step: `active` stays the newest.
      status('d', 'verified', '2026-12-02T00:00:03.000Z'),
      status('e', 'downloading', '2026-12-02T00:00:01.000Z'),
    ]);
    expect(merged).toHaveLength(2);
    const d = merged.find((m) => m.deviceId === 'd')!;
    expect(d).toMatchObject({
      state: 'active',
      activeVersion: 'v2',
      previousVersion: 'v1',
      firstAt: '2026-12-02T00:00:00.000Z',
      lastAt: '2026-12-02T00:00:03.000Z',
      reason: null,
    });
    expect(JSON.parse(d.shadow!)).toEqual(shadow);
    expect(JSON.parse(d.health!)).toEqual(health);
    expect(merged.find((m) => m.deviceId === 'e')).toMatchObject({ state: 'downloading', shadow: null, health: null });
  });
});
