import { MAX_DETECTIONS_PER_BATCH } from '@shelfsight/contracts';

export interface AdmissionOptions {
  /** Detections awaiting commit beyond which a batch is deferred (INGEST_MAX_PENDING). */
  maxPendingRows: number;
  /** Their estimated size beyond which a batch is deferred (INGEST_MAX_PENDING_BYTES). */
  maxPendingBytes: number;
  /** What a deferred device is told to wait, ms (it adds jitter). */
  retryAfterMs: number;
  /** The pending queue the windows aim at, in seconds of the measured commit rate. */
  targetDelayS?: number;
  /** Least the target may be, detections (so a hub starting cold grants usable windows). */
  minTargetRows?: number;
  /** Least window granted a device. */
  minWindow?: number;
  /** A device counts as sending while its last batch is younger than this, ms. */
  activeForMs?: number;
  /** Devices (device, epoch) remembered for deduplication; the least recently seen are forgotten first. */
  maxDevices?: number;
}

/** What the writer holds now. */
export interface WriterLoad {
  rows: number;
  bytes: number;
}

export interface Admission<T> {
  /** New detections to commit (marked pending). */
  fresh: T[];
  /** Committed already by this hub: acknowledged at once, no SQL. */
  held: number[];
  /** Awaiting commit from an earlier message: dropped (that commit's ack covers them). */
  pending: number[];
  /** Not taken (over capacity): the device keeps them and sends them again after `retryAfterMs`. */
  deferred: number[];
  retryAfterMs?: number;
  /** Detections this device may have in flight. */
  window: number;
}

const DEFAULTS = { targetDelayS: 1, minTargetRows: 4000, minWindow: 10, activeForMs: 10_000, maxDevices: 20_000 };
/** Seconds of commits the rate is measured over. */
const RATE_SECONDS = 5;

/**
 * The hub's admission decision for a detection batch, before any SQL:
 * - retransmissions (same seq, same frame) are split off: what this hub committed lately
 *   (acknowledged at once) and what it has pending from an earlier message (dropped:
 *   that commit's ack covers them); a seq sent again with another frame goes to SQL,
 *   which counts the conflict;
 * - new detections are taken while the writer's queue is under its bounds (rows and
 *   bytes), else deferred whole with a retry-after;
 * - every answer grants the device a window: its fair share of the queue the hub aims
 *   at (the commit rate measured over the last seconds times `targetDelayS`), shrunk
 *   as the queue grows past it, so the sum of windows keeps the queue short and the
 *   writer's bounds are seldom reached.
 * Pure: the clock is given; the service applies it.
 */
export class IngestAdmission {
  private readonly options: Required<AdmissionOptions>;
  private readonly devices = new Map<string, DeviceSeqs>();
  private readonly lastSent = new Map<string, number>();
  /** Rows committed per second, the last RATE_SECONDS seconds (ring by second). */
  private readonly committedPerS = new Array<number>(RATE_SECONDS).fill(0);
  private rateSecond = 0;

  constructor(
    options: AdmissionOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...DEFAULTS, ...options };
    this.rateSecond = Math.floor(this.now() / 1000);
  }

  /** Sort this batch's detections into fresh, held, pending or deferred, and grant a window. */
  admit<T extends SeqFrame>(deviceId: string, epoch: string, detections: readonly T[], bytes: number, load: WriterLoad): Admission<T> {
    this.noteSender(deviceId);
    const key = `${deviceId}\u0000${epoch}`;
    let seqs = this.devices.get(key);
    if (seqs) {
      // Most recently seen last: the first entries are the ones to forget.
      this.devices.delete(key);
      this.devices.set(key, seqs);
    }
    const fresh: T[] = [];
    const held: number[] = [];
    const pending: number[] = [];
    const hashes: number[] = [];
    for (const d of detections) {
      const h = frameHash(d.frameId);
      if (seqs?.pending.get(d.seq) === h) pending.push(d.seq);
      else if (seqs?.committed.has(d.seq, h)) held.push(d.seq);
      else {
        fresh.push(d);
        hashes.push(h);
      }
    }
    const freshBytes = detections.length === 0 ? 0 : Math.ceil((bytes * fresh.length) / detections.length);
    if (fresh.length > 0 && (load.rows + fresh.length > this.options.maxPendingRows || load.bytes + freshBytes > this.options.maxPendingBytes)) {
      return { fresh: [], held, pending, deferred: fresh.map((d) => d.seq), retryAfterMs: this.options.retryAfterMs, window: this.window(load) };
    }
    if (fresh.length > 0) {
      if (!seqs) {
        seqs = { committed: new CommittedRing(), pending: new Map() };
        this.devices.set(key, seqs);
        if (this.devices.size > this.options.maxDevices) this.forgetOldest();
      }
      for (let i = 0; i < fresh.length; i++) seqs.pending.set(fresh[i]!.seq, hashes[i]!);
    }
    return { fresh, held, pending, deferred: [], window: this.window({ rows: load.rows + fresh.length, bytes: load.bytes + freshBytes }) };
  }

  /** These fresh detections were committed (or dead-lettered): from now on they are held. */
  committed(deviceId: string, epoch: string, detections: readonly SeqFrame[]): void {
    this.countCommitted(detections.length);
    const s = this.devices.get(`${deviceId}\u0000${epoch}`);
    if (!s) return;
    for (const d of detections) {
      s.pending.delete(d.seq);
      s.committed.add(d.seq, frameHash(d.frameId));
    }
  }

  /** These fresh detections were not committed (the hub is stopping): no longer pending. */
  released(deviceId: string, epoch: string, seqs: readonly number[]): void {
    const s = this.devices.get(`${deviceId}\u0000${epoch}`);
    if (s) for (const seq of seqs) s.pending.delete(seq);
  }

  /** What a deferred device is told to wait, ms. */
  get retryAfterMs(): number {
    return this.options.retryAfterMs;
  }

  /** Devices that sent detections within `activeForMs`. */
  activeDevices(): number {
    const cutoff = this.now() - this.options.activeForMs;
    for (const [id, at] of this.lastSent) {
      if (at >= cutoff) break; // in order of last sending
      this.lastSent.delete(id);
    }
    return this.lastSent.size;
  }

  /** Detections committed per second, over the last seconds. */
  commitRate(): number {
    this.countCommitted(0);
    return this.committedPerS.reduce((a, b) => a + b, 0) / RATE_SECONDS;
  }

  /** The pending queue the windows aim at, detections. */
  targetRows(): number {
    const { minTargetRows, targetDelayS, maxPendingRows } = this.options;
    return Math.min(Math.floor(maxPendingRows / 2), Math.max(minTargetRows, Math.floor(this.commitRate() * targetDelayS)));
  }

  /** A device's window: its share of the target queue, shrunk in proportion as the queue (rows or bytes) outgrows the target. */
  window(load: WriterLoad): number {
    const target = this.targetRows();
    const share = target / Math.max(1, this.activeDevices());
    const byteTarget = (this.options.maxPendingBytes * target) / this.options.maxPendingRows;
    const excess = Math.max(load.rows / target, load.bytes / byteTarget);
    const w = excess > 1 ? share / excess : share;
    return Math.max(this.options.minWindow, Math.min(MAX_DETECTIONS_PER_BATCH * 20, Math.floor(w)));
  }

  private noteSender(deviceId: string): void {
    this.lastSent.delete(deviceId);
    this.lastSent.set(deviceId, this.now());
  }

  private countCommitted(rows: number): void {
    const second = Math.floor(this.now() / 1000);
    const gap = Math.min(RATE_SECONDS, second - this.rateSecond);
    for (let i = 1; i <= gap; i++) this.committedPerS[(this.rateSecond + i) % RATE_SECONDS] = 0;
    if (second > this.rateSecond) this.rateSecond = second;
    this.committedPerS[this.rateSecond % RATE_SECONDS]! += rows;
  }

  private forgetOldest(): void {
    for (const [key, s] of this.devices) {
      if (this.devices.size <= this.options.maxDevices) return;
      if (s.pending.size > 0) continue; // its commit will come; keep it
      this.devices.delete(key);
    }
  }
}

interface DeviceSeqs {
  committed: CommittedRing;
  /** seq → hash of its frame id, awaiting commit. */
  pending: Map<number, number>;
}

/** Identity of a detection for deduplication: its seq and its frame id (a reused seq with another frame is no repeat). */
export interface SeqFrame {
  seq: number;
  frameId: string;
}

/** Committed seqs remembered per (device, epoch): a device retransmits recent ones, so recent ones suffice. */
const RING_SLOTS = 512;

/**
 * The recently committed detections of one (device, epoch): direct-mapped by seq (slot =
 * seq mod 512), each slot the seq and a hash of its frame id, 6 KB per device. A device
 * sends in seq order and retransmits what is in its window, so the slots hold what it
 * may send again; an older seq, or a slot taken over by a newer one, is simply not
 * known (its repeat goes to SQL, which ignores it, as before).
 */
export class CommittedRing {
  private readonly seqs = new Float64Array(RING_SLOTS);
  private readonly hashes = new Int32Array(RING_SLOTS);

  has(seq: number, frameHash: number): boolean {
    const slot = seq % RING_SLOTS;
    return this.seqs[slot] === seq && this.hashes[slot] === frameHash;
  }

  add(seq: number, frameHash: number): void {
    const slot = seq % RING_SLOTS;
    if (this.seqs[slot]! > seq) return; // a newer seq holds the slot
    this.seqs[slot] = seq;
    this.hashes[slot] = frameHash;
  }
}

/** 32-bit FNV-1a of a frame id. */
export function frameHash(frameId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < frameId.length; i++) {
    h ^= frameId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** Fixed part of a detection's JSON (keys, numbers, punctuation) and of each topK entry. */
const DETECTION_FIXED_BYTES = 190;
const SCORE_FIXED_BYTES = 40;

/**
 * A detection batch's size as the hub holds it, estimated from its JSON (the strings
 * counted, the fixed parts by constants) without serialising it again. What
 * INGEST_MAX_PENDING_BYTES bounds.
 */
export function estimatedBytes(detections: ReadonlyArray<{ frameId: string; site: string; location: string; category: string; modelVersion: string; topK: ReadonlyArray<{ category: string }> }>): number {
  let n = 0;
  for (const d of detections) {
    n += DETECTION_FIXED_BYTES + d.frameId.length + d.site.length + d.location.length + d.category.length + d.modelVersion.length;
    for (const k of d.topK) n += SCORE_FIXED_BYTES + k.category.length;
  }
  return n;
}
