import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Detection } from '@shelfsight/contracts';
import { RateLimitedLog } from '../common/rate-limited-log';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { CommittedDetections } from './committed-detections';
import { type DeadLetter, IngestRepository, type IngestMessage, permanentSqlState } from './ingest.repository';

/** Totals of the transaction a batch was committed in (per-message outcomes are not separable in a set-based commit). */
export interface CommitOutcome {
  stored: number;
  duplicates: number;
  stateChanges: number;
  seqConflicts: number;
  /** Detections the database refused for good: kept in detection_dead_letters and acknowledged. */
  deadLettered: number;
}

interface Pending {
  deviceId: string;
  epoch: string;
  detections: Detection[];
  /** Estimated size (see estimatedBytes), what INGEST_MAX_PENDING_BYTES bounds. */
  bytes: number;
  /** Its distinct locations (`site NUL location`): the location states its commit locks. */
  keys: string[];
  resolve(outcome: CommitOutcome): void;
  reject(err: Error): void;
}

export class WriterClosedError extends Error {
  override name = 'WriterClosedError';
}

/** How often the devices of committed detections are noted as seen, ms. */
const SEEN_EVERY_MS = 1000;

/**
 * Batching writer: detections from many MQTT messages are committed together, one
 * transaction at a time per flusher. Two flushers never commit groups that share a
 * location (each transaction locks its locations' states until it commits, so the
 * second would only wait in PostgreSQL, holding a connection): a flusher takes the
 * messages whose locations are free and leaves the others for the next group. A commit
 * that fails (database down, deadlock) is retried with backoff, keeping its rows; callers learn of success only after commit,
 * so nothing is acknowledged that is not stored. A commit PostgreSQL refuses for good
 * (a row it will never take) is bisected: the good rows are stored and each refused row
 * goes to the dead-letter table, so one bad row cannot block its group forever. Memory is bounded: past
 * `ingestMaxPending` rows or `ingestMaxPendingBytes` (estimated), `submit` refuses (the
 * device keeps the data and resends); the service's admission defers before that.
 */
@Injectable()
export class DetectionWriter implements OnModuleDestroy {
  private readonly log = new Logger(DetectionWriter.name);
  private readonly conflictLog = new RateLimitedLog((line) => this.log.warn(line));
  private readonly deadLetterLog = new RateLimitedLog((line) => this.log.warn(line));
  private queue: Pending[] = [];
  private pendingRows = 0;
  private pendingBytes = 0;
  private activeFlushers = 0;
  private closed = false;
  private readonly maxFlushers = 2;
  /** Locations of the groups being committed. */
  private readonly busy = new Set<string>();
  /**
   * The last look found no message free of `busy`: until a commit ends, only a new message
   * of free locations can change that (so a submit does not look through the queue again).
   */
  private stalled = false;
  /** Devices of committed detections not yet noted as seen. */
  private readonly seen = new Set<string>();
  private readonly seenTimer: NodeJS.Timeout;

  constructor(
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly repository: IngestRepository,
    private readonly metrics: HubMetrics,
    private readonly committed: CommittedDetections,
  ) {
    metrics.pending.readFrom(() => this.pendingRows);
    metrics.pendingBytes.readFrom(() => this.pendingBytes);
    this.seenTimer = setInterval(() => void this.flushSeen(), SEEN_EVERY_MS);
    this.seenTimer.unref();
  }

  /** Note the devices of what was committed as seen (apart from the ingest transaction: see IngestRepository.markSeen). */
  private async flushSeen(): Promise<void> {
    if (this.seen.size === 0) return;
    const ids = [...this.seen];
    this.seen.clear();
    try {
      await this.repository.markSeen(ids);
    } catch (err) {
      this.log.warn(`noting ${ids.length} device(s) as seen failed: ${(err as Error).message}`);
    }
  }

  /** Detections (and their estimated bytes) awaiting commit. */
  load(): { rows: number; bytes: number } {
    return { rows: this.pendingRows, bytes: this.pendingBytes };
  }

  /** Resolves after the detections are committed; undefined when the writer is full (rows or bytes). */
  submit(deviceId: string, epoch: string, detections: Detection[], bytes = 0): Promise<CommitOutcome> | undefined {
    if (this.closed) return Promise.reject(new WriterClosedError('hub is shutting down'));
    if (this.pendingRows + detections.length > this.config.ingestMaxPending) return undefined;
    if (this.pendingRows > 0 && this.pendingBytes + bytes > this.config.ingestMaxPendingBytes) return undefined;
    this.pendingRows += detections.length;
    this.pendingBytes += bytes;
    const keys = [...new Set(detections.map((d) => `${d.site}\u0000${d.location}`))];
    const promise = new Promise<CommitOutcome>((resolve, reject) => this.queue.push({ deviceId, epoch, detections, bytes, keys, resolve, reject }));
    if (!this.stalled || !keys.some((k) => this.busy.has(k))) this.kick();
    return promise;
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    clearInterval(this.seenTimer);
    const deadline = Date.now() + 5000;
    while ((this.queue.length > 0 || this.activeFlushers > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const p of this.queue.splice(0)) p.reject(new WriterClosedError('hub stopped before commit'));
    await this.flushSeen();
  }

  private kick(): void {
    while (this.activeFlushers < this.maxFlushers && this.queue.length > 0) {
      const group = this.takeGroup();
      this.stalled = group.length === 0;
      if (this.stalled) return; // what waits shares locations with a commit under way: its end kicks again
      this.activeFlushers += 1;
      void this.commitWithRetry(group).finally(() => {
        this.activeFlushers -= 1;
        for (const p of group) for (const k of p.keys) this.busy.delete(k);
        this.stalled = false;
        this.kick();
      });
    }
  }

  /**
   * Up to `ingestBatchRows` detections of queued messages, oldest first, whose locations no
   * commit under way holds, looking through the whole queue (one pass); their locations are
   * then held until the group's commit ends. No bound on how far it looks: with a bound, the
   * messages of free locations queued behind that many of a busy one waited for its commit
   * to end, however long it took (retried, or held up), the second flusher idle meanwhile.
   * A look costs one pass and happens only when a commit ends or when a submit could start one
   * (see `stalled`).
   */
  private takeGroup(): Pending[] {
    const group: Pending[] = [];
    const left: Pending[] = [];
    let rows = 0;
    let i = 0;
    for (; i < this.queue.length; i++) {
      const next = this.queue[i]!;
      if (group.length > 0 && rows + next.detections.length > this.config.ingestBatchRows) break;
      if (next.keys.some((k) => this.busy.has(k))) {
        left.push(next);
        continue;
      }
      group.push(next);
      rows += next.detections.length;
    }
    if (group.length === 0) return group;
    this.queue = i === this.queue.length ? left : left.concat(this.queue.slice(i));
    for (const p of group) for (const k of p.keys) this.busy.add(k);
    return group;
  }

  private async commitWithRetry(group: Pending[]): Promise<void> {
    let rows = 0;
    let bytes = 0;
    for (const p of group) {
      rows += p.detections.length;
      bytes += p.bytes;
    }
    try {
      const outcome = await this.commitPart(
        group.map((p) => ({ deviceId: p.deviceId, epoch: p.epoch, detections: p.detections })),
        rows,
      );
      this.pendingRows -= rows;
      this.pendingBytes -= bytes;
      for (const p of group) this.seen.add(p.deviceId);
      for (const p of group) p.resolve(outcome);
    } catch (err) {
      this.pendingRows -= rows;
      this.pendingBytes -= bytes;
      for (const p of group) p.reject(err as Error);
    }
  }

  /**
   * Commit these messages (`rows` detections) in one transaction. When PostgreSQL refuses
   * them for good, the part is split in halves and each committed alone, down to single
   * detections: the good rows are stored and each refused one is dead-lettered (and so
   * acknowledged), instead of the whole group failing on every retry.
   */
  private async commitPart(messages: IngestMessage[], rows: number): Promise<CommitOutcome> {
    const started = performance.now();
    const attempt = await this.retryTransient(`commit of ${rows} detections`, () => this.repository.commit(messages, this.config.minConfidence));
    if (attempt.ok) {
      const result = attempt.value;
      this.metrics.commitSeconds.observe((performance.now() - started) / 1000);
      this.metrics.batchRows.observe(rows);
      this.metrics.detectionsStored.inc({}, result.stored);
      this.metrics.detectionsDuplicate.inc({}, rows - result.stored);
      this.metrics.stateChanges.inc({}, result.stateChanges);
      if (result.seqConflicts > 0) {
        this.metrics.seqConflicts.inc({}, result.seqConflicts);
        this.conflictLog.warn(
          `${result.seqConflicts} detection(s) refused: sequence number reused with another frame (the stored one is kept): ${result.conflictExamples.join('; ')}`,
        );
      }
      if (result.stored > 0) this.committed.emit(messages.flatMap((m) => m.detections.map((d) => ({ site: d.site, location: d.location }))));
      return { stored: result.stored, duplicates: rows - result.stored, stateChanges: result.stateChanges, seqConflicts: result.seqConflicts, deadLettered: 0 };
    }
    if (rows > 1) {
      const half = Math.floor(rows / 2);
      const [left, right] = splitMessages(messages, half);
      return addOutcomes(await this.commitPart(left, half), await this.commitPart(right, rows - half));
    }
    const m = messages[0]!;
    const letter: DeadLetter = { deviceId: m.deviceId, epoch: m.epoch, detection: m.detections[0]!, sqlstate: attempt.sqlstate, error: attempt.error.message };
    const kept = await this.retryTransient('dead-lettering of a refused detection', () => this.repository.deadLetter([letter]));
    this.metrics.detectionsDeadLettered.inc({ sqlstate: attempt.sqlstate });
    const where = `${m.deviceId} ${m.epoch}/${letter.detection.seq} (frame ${letter.detection.frameId})`;
    if (kept.ok) {
      this.deadLetterLog.warn(`detection ${where} refused by the database (${attempt.sqlstate}: ${attempt.error.message}); kept in detection_dead_letters and acknowledged`);
    } else {
      // Even the dead-letter table refuses it: the log line is all that is left of it.
      this.log.error(`detection ${where} refused by the database (${attempt.sqlstate}: ${attempt.error.message}) and not dead-lettered (${kept.error.message}): ${JSON.stringify(letter.detection)}`);
    }
    return { stored: 0, duplicates: 0, stateChanges: 0, seqConflicts: 0, deadLettered: 1 };
  }

  /**
   * Run `op` until it succeeds or fails for good (SQLSTATE class 22/23); any other failure
   * (connection, deadlock, shutdown) is retried with backoff, as long as the hub runs.
   */
  private async retryTransient<T>(what: string, op: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; sqlstate: string; error: Error }> {
    let backoff = 100;
    for (;;) {
      try {
        return { ok: true, value: await op() };
      } catch (err) {
        const sqlstate = permanentSqlState(err);
        if (sqlstate) return { ok: false, sqlstate, error: err as Error };
        this.metrics.commitErrors.inc();
        this.log.warn(`${what} failed (${(err as Error).message}); retrying in ${backoff} ms`);
        if (this.closed) throw new WriterClosedError('hub stopped before commit');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }
}

/** The first `n` detections of these messages, and the rest (each side keeps its messages' device and epoch). */
function splitMessages(messages: readonly IngestMessage[], n: number): [IngestMessage[], IngestMessage[]] {
  const left: IngestMessage[] = [];
  const right: IngestMessage[] = [];
  let taken = 0;
  for (const m of messages) {
    const k = Math.min(m.detections.length, Math.max(0, n - taken));
    if (k > 0) left.push({ ...m, detections: m.detections.slice(0, k) });
    if (k < m.detections.length) right.push({ ...m, detections: m.detections.slice(k) });
    taken += k;
  }
  return [left, right];
}

function addOutcomes(a: CommitOutcome, b: CommitOutcome): CommitOutcome {
  return {
    stored: a.stored + b.stored,
    duplicates: a.duplicates + b.duplicates,
    stateChanges: a.stateChanges + b.stateChanges,
    seqConflicts: a.seqConflicts + b.seqConflicts,
    deadLettered: a.deadLettered + b.deadLettered,
  };
}
