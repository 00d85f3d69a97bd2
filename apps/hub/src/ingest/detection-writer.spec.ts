import { Logger } from '@nestjs/common';
import type { Detection } from '@shelfsight/contracts';
import type { HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { CommittedDetections } from './committed-detections';
import { DetectionWriter } from './detection-writer';
import type { DeadLetter, IngestCommit, IngestMessage, IngestRepository } from './ingest.repository';

const sqlError = (code: string | undefined, message: string) => Object.assign(new Error(message), code === undefined ? {} : { code });

/**
 * The database at its boundary: a commit fails as a whole, with 23514 when any of its
 * detections is in `refused`, or with whatever `failNext` says (once each).
 */
class FakeDatabase {
  readonly stored: number[] = [];
  readonly deadLetters: DeadLetter[] = [];
  readonly commits: number[] = [];
  readonly seen: string[] = [];
  /** Commits under way, and the most at once. */
  open = 0;
  mostOpen = 0;
  /** Locations held by commits under way, and commits that found one of theirs held (a lock wait on PostgreSQL). */
  readonly held = new Set<string>();
  lockWaits = 0;
  /** Makes every commit take this long, ms. */
  commitMs = 0;
  refused = new Set<number>();
  failNext: Error[] = [];

  async commit(messages: readonly IngestMessage[]): Promise<IngestCommit> {
    const seqs = messages.flatMap((m) => m.detections.map((d) => d.seq));
    this.commits.push(seqs.length);
    if (this.commitMs > 0) {
      const locations = new Set(messages.flatMap((m) => m.detections.map((d) => `${d.site}/${d.location}`)));
      if ([...locations].some((l) => this.held.has(l))) this.lockWaits++;
      for (const l of locations) this.held.add(l);
      this.mostOpen = Math.max(this.mostOpen, ++this.open);
      await new Promise((r) => setTimeout(r, this.commitMs));
      this.open--;
      for (const l of locations) this.held.delete(l);
    }
    const transient = this.failNext.shift();
    if (transient) return Promise.reject(transient);
    const bad = seqs.find((s) => this.refused.has(s));
    if (bad !== undefined) return Promise.reject(sqlError('23514', `new row violates check constraint (seq ${bad})`));
    this.stored.push(...seqs);
    return Promise.resolve({ stored: seqs.length, stateChanges: 0, seqConflicts: 0, conflictExamples: [] });
  }

  markSeen(deviceIds: readonly string[]): Promise<void> {
    this.seen.push(...deviceIds);
    return Promise.resolve();
  }

  deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    this.deadLetters.push(...letters);
    return Promise.resolve();
  }
}

const detections = (from: number, to: number, location = 'A-01-1-A'): Detection[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    frameId: `f${from + i}`,
    site: 's',
    location,
    capturedAt: '2026-12-01T10:00:00.000Z',
    category: 'milk',
    confidence: 0.9,
    topK: [],
    modelVersion: 'm',
    latencyMs: 1,
  }));

describe(DetectionWriter.name, () => {
  let db: FakeDatabase;
  let metrics: HubMetrics;
  let sut: DetectionWriter;

  beforeAll(() => jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined));
  beforeEach(() => {
    db = new FakeDatabase();
    metrics = new HubMetrics();
    const config = { ingestBatchRows: 1000, ingestMaxPending: 10_000, minConfidence: 0.5 } as HubConfig;
    sut = new DetectionWriter(config, db as unknown as IngestRepository, metrics, new CommittedDetections());
  });
  afterEach(() => sut.onModuleDestroy());

  it('splits a permanently refused commit, stores the good rows, dead-letters the bad ones and resolves every message', async () => {
    db.refused = new Set([7, 42]);
    const outcomes = await Promise.all([sut.submit('d1', 'e1', detections(1, 50))!, sut.submit('d2', 'e1', detections(51, 64))!]);
    expect(db.stored.sort((a, b) => a - b)).toEqual(detections(1, 64).map((d) => d.seq).filter((s) => s !== 7 && s !== 42));
    expect(db.deadLetters.map((l) => [l.deviceId, l.detection.seq, l.sqlstate])).toEqual([
      ['d1', 7, '23514'],
      ['d1', 42, '23514'],
    ]);
    // Each message resolves with the totals of the group it was committed in (here each its own).
    expect(outcomes).toMatchObject([
      { stored: 48, deadLettered: 2 },
      { stored: 14, deadLettered: 0 },
    ]);
    // Bisection: a few dozen commits for two bad rows among 64, not one per row.
    expect(db.commits.length).toBeLessThan(30);
    expect(await metrics.registry.metrics()).toMatch(/^shelfsight_detections_dead_lettered_total\{sqlstate="23514"\} 2$/m);
  });

  it('retries transient errors (serialization, connection, no SQLSTATE) with the whole group, dead-lettering nothing', async () => {
    db.failNext = [sqlError('40001', 'could not serialize'), sqlError('08006', 'connection failure'), sqlError(undefined, 'socket hang up')];
    const outcome = await sut.submit('d1', 'e1', detections(1, 10))!;
    expect(outcome).toMatchObject({ stored: 10, deadLettered: 0 });
    expect(db.commits).toEqual([10, 10, 10, 10]);
    expect(db.deadLetters).toEqual([]);
  }, 10_000);

  it('never commits two groups that lock the same location at once, commits groups of other locations side by side, and notes the devices as seen after', async () => {
    await sut.onModuleDestroy();
    const config = { ingestBatchRows: 10, ingestMaxPending: 10_000, ingestMaxPendingBytes: 1_000_000, minConfidence: 0.5 } as HubConfig;
    sut = new DetectionWriter(config, db as unknown as IngestRepository, metrics, new CommittedDetections());
    db.commitMs = 30;
    const submitted = [];
    for (let i = 0; i < 3; i++) {
      submitted.push(sut.submit('d1', 'e1', detections(i * 10 + 1, i * 10 + 10, 'A-01-1-A'), 1000)!);
      submitted.push(sut.submit('d2', 'e1', detections(i * 10 + 1, i * 10 + 10, 'B-01-1-A'), 1000)!);
    }
    expect(sut.load()).toEqual({ rows: 60, bytes: 6000 });
    await Promise.all(submitted);
    expect(db.stored).toHaveLength(60);
    expect(db.lockWaits).toBe(0);
    expect(db.mostOpen).toBe(2);
    expect(sut.load()).toEqual({ rows: 0, bytes: 0 });
    expect(db.seen).toEqual([]); // noted apart, not in the ingest transaction
    await sut.onModuleDestroy();
    expect(db.seen.sort()).toEqual(['d1', 'd2']);
  });

  it('while one commit is under way, a message of free locations is committed beside it however many queued ones wait for the busy location', async () => {
    // Commits that end only when told to: one under way as long as the test likes (a slow or retried commit).
    const open: Array<{ locations: string[]; done: () => void }> = [];
    const repository = {
      commit: (messages: readonly IngestMessage[]) =>
        new Promise<IngestCommit>((resolve) => {
          const locations = [...new Set(messages.flatMap((m) => m.detections.map((d) => d.location)))];
          open.push({ locations, done: () => resolve({ stored: messages.reduce((n, m) => n + m.detections.length, 0), stateChanges: 0, seqConflicts: 0, conflictExamples: [] }) });
        }),
      markSeen: () => Promise.resolve(),
      deadLetter: () => Promise.resolve(),
    };
    const config = { ingestBatchRows: 1, ingestMaxPending: 10_000, ingestMaxPendingBytes: 1_000_000, minConfidence: 0.5 } as HubConfig;
    const writer = new DetectionWriter(config, repository as unknown as IngestRepository, metrics, new CommittedDetections());
    const settled = async () => {
      for (let i = 0; i < 10; i++) await Promise.resolve();
    };
    const first = writer.submit('d1', 'e1', detections(1, 1, 'A-01-1-A'), 100)!;
    const waiting = Array.from({ length: 300 }, (_, i) => writer.submit('d1', 'e1', detections(i + 2, i + 2, 'A-01-1-A'), 100)!);
    let otherDone = false;
    const other = writer.submit('d2', 'e1', detections(1, 1, 'B-01-1-A'), 100)!.then((o) => ((otherDone = true), o));
    await settled();
    // The second flusher is free and B-01-1-A is held by no one: its commit starts now, not after A-01-1-A's.
    expect(open.map((c) => c.locations)).toEqual([['A-01-1-A'], ['B-01-1-A']]);
    open[1]!.done();
    await settled();
    expect(otherDone).toBe(true);
    await other;
    // A-01-1-A's messages follow one group at a time as each commit ends.
    open[0]!.done();
    for (let n = 0; n < 300; n++) {
      await settled();
      expect(open).toHaveLength(n + 3);
      open[n + 2]!.done();
    }
    await Promise.all([first, ...waiting]);
    expect(writer.load()).toEqual({ rows: 0, bytes: 0 });
    await writer.onModuleDestroy();
  });

  it('refuses past its bound in bytes as in rows', async () => {
    const config = { ingestBatchRows: 10, ingestMaxPending: 10_000, ingestMaxPendingBytes: 5000, minConfidence: 0.5 } as HubConfig;
    const small = new DetectionWriter(config, db as unknown as IngestRepository, metrics, new CommittedDetections());
    db.commitMs = 100;
    const first = small.submit('d1', 'e1', detections(1, 10), 4000);
    expect(first).toBeDefined();
    expect(small.submit('d1', 'e1', detections(11, 20), 2000)).toBeUndefined();
    await first;
    expect(small.submit('d1', 'e1', detections(11, 20), 2000)).toBeDefined();
    await small.onModuleDestroy();
  });
});
