import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { DetectionSchema, EpochSchema, type Detection } from '@shelfsight/contracts';
import { silentLogger, type Logger } from '@shelfsight/common';
import { AppendLog } from '../storage/append-log';

/** A detection before the outbox gives it its sequence number. */
export type NewDetection = Omit<Detection, 'seq'>;

/** Thrown by {@link Outbox.add} when the outbox holds `maxBytes` of unacknowledged detections. */
export class OutboxFullError extends Error {
  override name = 'OutboxFullError';
}

export interface OutboxOptions {
  /** Bound on the serialized size of unacknowledged detections. */
  maxBytes: number;
  /** Compact once the log is larger than this and mostly acknowledged records. */
  compactMinBytes?: number;
  logger?: Logger;
}

export interface OutboxRecovery {
  pending: number;
  nextSeq: number;
  epoch: string;
  /** True when no epoch was on disk: a new outbox, or one whose storage was wiped. */
  newEpoch: boolean;
  tornTail: boolean;
  corruptLines: number;
}

/**
 * A pending detection, kept only as its JSON (what the log line and every publish use):
 * the parsed object beside it would more than double the memory of a full outbox.
 */
type Entry = { json: string; bytes: number; durable: boolean };

type HeaderRecord = { t: 'h'; nextSeq: number; epoch: string };
type DetectionRecord = { t: 'd' } & Detection;
type AckRecord = { t: 'a'; seqs: number[] };

/**
 * The durable outbox: every detection is appended to disk (fsync) before anyone may
 * publish it, and stays until the hub acknowledges its sequence number.
 *
 * On disk: `outbox.log`, JSON lines of `{t:'d', ...detection}` and `{t:'a', seqs}`,
 * replayed at open (a torn last line from a crash is ignored). Compaction rewrites
 * the file as `{t:'h', nextSeq, epoch}` plus the pending detections, atomically (temp
 * file, fsync, rename), so sequence numbers are never reused, even once everything is
 * acked. The epoch is chosen at random when the outbox is created; if the storage is
 * wiped, the next outbox starts a new epoch at seq 1, and the hub, which keys
 * detections by (device, epoch, seq), stores them instead of taking them for repeats.
 *
 * Bounded: when pending detections reach `maxBytes`, {@link add} refuses
 * ({@link OutboxFullError}) and `full` is true until acks free space; the agent
 * turns that into backpressure on its frame sources.
 *
 * Events: `added` (detection, durable), `acked` (seqs removed), `space` (was full, has room), `empty`.
 */
export class Outbox extends EventEmitter {
  private readonly entries = new Map<number, Entry>();
  private nextSeqValue = 1;
  private epochValue: string | undefined;
  private pendingBytes = 0;
  private compacting: Promise<void> | undefined;
  private readonly compactMinBytes: number;
  private readonly logger: Logger;
  private fullSince: number | undefined;
  /** Times {@link add} was refused because the outbox was full. */
  refusedTotal = 0;
  /** Sequence numbers acknowledged that were not pending (already acked, or unknown). */
  unknownAcksTotal = 0;
  compactionsTotal = 0;

  private constructor(
    private readonly log: AppendLog,
    private readonly options: OutboxOptions,
  ) {
    super();
    this.compactMinBytes = options.compactMinBytes ?? 1024 * 1024;
    this.logger = options.logger ?? silentLogger;
  }

  static async open(dir: string, options: OutboxOptions): Promise<{ outbox: Outbox; recovery: OutboxRecovery }> {
    const { log, records, torn, corrupt } = await AppendLog.open(path.join(dir, 'outbox.log'));
    const outbox = new Outbox(log, options);
    const corruptLines = corrupt + outbox.replay(records);
    const newEpoch = outbox.epochValue === undefined;
    outbox.epochValue ??= newOutboxEpoch();
    const recovery: OutboxRecovery = { pending: outbox.depth, nextSeq: outbox.nextSeqValue, epoch: outbox.epochValue, newEpoch, tornTail: torn, corruptLines };
    if (torn || corruptLines > 0) outbox.logger.warn('outbox recovered from a torn or corrupt log', { ...recovery });
    // Start from a compact file: header (next seq, epoch) + pending detections only.
    await outbox.compact();
    return { outbox, recovery };
  }

  private replay(records: unknown[]): number {
    let maxSeq = 0;
    let bad = 0;
    for (const rec of records) {
      const r = rec as Partial<HeaderRecord | DetectionRecord | AckRecord> | null;
      if (r?.t === 'h' && typeof r.nextSeq === 'number') {
        this.nextSeqValue = Math.max(this.nextSeqValue, r.nextSeq);
        if (typeof r.epoch === 'string' && EpochSchema.safeParse(r.epoch).success) this.epochValue = r.epoch;
      } else if (r?.t === 'd') {
        const { t: _t, ...rest } = r;
        const parsed = DetectionSchema.safeParse(rest);
        if (!parsed.success) {
          bad++;
          continue;
        }
        const d = parsed.data;
        maxSeq = Math.max(maxSeq, d.seq);
        if (!this.entries.has(d.seq)) {
          const bytes = lineBytes({ t: 'd', ...d });
          this.entries.set(d.seq, { json: JSON.stringify(d), bytes, durable: true });
          this.pendingBytes += bytes;
        }
      } else if (r?.t === 'a' && Array.isArray(r.seqs)) {
        for (const seq of r.seqs) this.remove(seq);
      } else {
        bad++;
      }
    }
    this.nextSeqValue = Math.max(this.nextSeqValue, maxSeq + 1);
    // Replayed entries are in file order, which is seq order; keep the map sorted anyway.
    const sorted = [...this.entries.entries()].sort((a, b) => a[0] - b[0]);
    this.entries.clear();
    for (const [seq, e] of sorted) this.entries.set(seq, e);
    return bad;
  }

  /** Pending (unacknowledged) detections, durable or being written. */
  get depth(): number {
    return this.entries.size;
  }

  /** Serialized size of the pending detections (what `maxBytes` bounds). */
  get bytes(): number {
    return this.pendingBytes;
  }

  /** Size of the log file on disk. */
  get fileBytes(): number {
    return this.log.size;
  }

  get nextSeq(): number {
    return this.nextSeqValue;
  }

  /** The epoch this outbox's sequence numbers belong to. */
  get epoch(): string {
    if (this.epochValue === undefined) throw new Error('outbox not opened');
    return this.epochValue;
  }

  get maxBytes(): number {
    return this.options.maxBytes;
  }

  /** True while pending detections fill the byte bound; new detections are refused. */
  get full(): boolean {
    return this.pendingBytes >= this.options.maxBytes;
  }

  /** Milliseconds the outbox has been full, 0 if it has room. */
  fullForMs(now = Date.now()): number {
    return this.fullSince === undefined ? 0 : now - this.fullSince;
  }

  /**
   * Give the detection the next sequence number and make it durable (append + fsync).
   * Resolves with the stored detection; only then may it be published.
   */
  async add(detection: NewDetection): Promise<Detection> {
    if (this.full) {
      this.refusedTotal++;
      throw new OutboxFullError(`outbox full: ${this.pendingBytes} of ${this.options.maxBytes} bytes unacknowledged`);
    }
    const stored: Detection = { seq: this.nextSeqValue++, ...detection };
    // Serialised once: the log line is `{"t":"d",` + the detection's own JSON, which the link publishes as it is.
    const json = JSON.stringify(stored);
    const line = `{"t":"d",${json.slice(1)}`;
    const bytes = Buffer.byteLength(line) + 1;
    const entry: Entry = { json, bytes, durable: false };
    this.entries.set(stored.seq, entry);
    this.pendingBytes += bytes;
    if (this.full) this.fullSince ??= Date.now();
    try {
      await this.log.appendLine(line, true);
    } catch (err) {
      this.remove(stored.seq);
      throw err;
    }
    entry.durable = true;
    this.emit('added', stored);
    return stored;
  }

  /** Durable pending detections in sequence order (parsed again from their JSON: see {@link pendingSeqs}). */
  *pending(): IterableIterator<Detection> {
    for (const e of this.entries.values()) if (e.durable) yield JSON.parse(e.json) as Detection;
  }

  /** Sequence numbers of the durable pending detections, in order (what the link may publish). */
  *pendingSeqs(): IterableIterator<number> {
    for (const [seq, e] of this.entries) if (e.durable) yield seq;
  }

  has(seq: number): boolean {
    return this.entries.has(seq);
  }

  /** A pending detection as JSON (exactly `JSON.stringify(detection)`), undefined once acked. */
  jsonOf(seq: number): string | undefined {
    return this.entries.get(seq)?.json;
  }

  /**
   * The hub committed these sequence numbers: forget them. The ack record is written
   * without fsync: losing it in a crash only means publishing again, and the hub
   * deduplicates by (device, epoch, seq).
   */
  ack(seqs: number[]): number[] {
    const removed: number[] = [];
    const wasFull = this.full;
    for (const seq of seqs) {
      const e = this.entries.get(seq);
      if (!e?.durable) {
        this.unknownAcksTotal++;
        continue;
      }
      this.remove(seq);
      removed.push(seq);
    }
    if (removed.length === 0) return removed;
    void this.log.append([{ t: 'a', seqs: removed } satisfies AckRecord], false).catch((err: unknown) => {
      this.logger.error('outbox: writing an ack record failed', { err });
    });
    this.emit('acked', removed);
    if (wasFull && !this.full) this.emit('space');
    if (this.entries.size === 0) this.emit('empty');
    this.maybeCompact();
    return removed;
  }

  private remove(seq: number): void {
    const e = this.entries.get(seq);
    if (!e) return;
    this.entries.delete(seq);
    this.pendingBytes -= e.bytes;
    if (!this.full) this.fullSince = undefined;
  }

  private maybeCompact(): void {
    if (this.compacting) return;
    if (this.log.size < this.compactMinBytes || this.log.size < 2 * this.pendingBytes) return;
    void this.compact().catch((err: unknown) => this.logger.error('outbox compaction failed', { err }));
  }

  /** Rewrite the log as header + pending detections (atomic; sequence numbers preserved). */
  async compact(): Promise<void> {
    while (this.compacting) await this.compacting;
    const records: unknown[] = [{ t: 'h', nextSeq: this.nextSeqValue, epoch: this.epoch } satisfies HeaderRecord];
    for (const e of this.entries.values()) records.push({ t: 'd', ...(JSON.parse(e.json) as Detection) } satisfies DetectionRecord);
    const run = this.log.rewrite(records).then(() => {
      this.compactionsTotal++;
    });
    this.compacting = run
      .catch(() => undefined)
      .finally(() => {
        this.compacting = undefined;
      });
    await run;
  }

  /** Resolves when nothing is pending (immediately if already empty). */
  whenEmpty(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.once('empty', () => resolve()));
  }

  async close(): Promise<void> {
    await this.log.close();
  }
}

/** Sortable by creation time, unique by its random part: `<ms base36>-<12 hex>`. */
function newOutboxEpoch(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

function lineBytes(record: unknown): number {
  return Buffer.byteLength(JSON.stringify(record)) + 1;
}
