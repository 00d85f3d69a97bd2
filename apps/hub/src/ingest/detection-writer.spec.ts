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
  refused = new Set<number>();
  failNext: Error[] = [];

  commit(messages: readonly IngestMessage[]): Promise<IngestCommit> {
    const seqs = messages.flatMap((m) => m.detections.map((d) => d.seq));
    this.commits.push(seqs.length);
    const transient = this.failNext.shift();
    if (transient) return Promise.reject(transient);
    const bad = seqs.find((s) => this.refused.has(s));
    if (bad !== undefined) return Promise.reject(sqlError('23514', `new row violates check constraint (seq ${bad})`));
    this.stored.push(...seqs);
    return Promise.resolve({ stored: seqs.length, stateChanges: 0, seqConflicts: 0, conflictExamples: [] });
  }

  deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    this.deadLetters.push(...letters);
    return Promise.resolve();
  }
}

const detections = (from: number, to: number): Detection[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    frameId: `f${from + i}`,
    site: 's',
    location: 'A-01-1-A',
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
});
