import type { Frame } from '../sources/frame';

export type DropReason = 'superseded' | 'queue_full';

/**
 * Bounded FIFO between the frame sources and the classifier.
 *
 * Policy when full (a frame arrives and `capacity` frames wait): the newest frame is
 * kept; the queued frame of the same location is dropped (`superseded`, the new one
 * shows the shelf more recently), else the oldest queued frame (`queue_full`).
 * Pull sources (the directory) only offer while there is room, so they never drop.
 */
export class FrameQueue {
  private items: Frame[] = [];
  private waiters: Array<(f: Frame | undefined) => void> = [];
  private closed = false;
  readonly dropped: Record<DropReason, number> = { superseded: 0, queue_full: 0 };

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length;
  }

  hasRoom(): boolean {
    return this.items.length < this.capacity;
  }

  /** Queue a frame; returns the frame dropped to make room, if any. */
  push(frame: Frame): { dropped?: Frame; reason?: DropReason } {
    if (this.closed) return { dropped: frame, reason: 'queue_full' };
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(frame);
      return {};
    }
    let result: { dropped?: Frame; reason?: DropReason } = {};
    if (this.items.length >= this.capacity) {
      const same = this.items.findIndex((f) => f.location === frame.location && f.site === frame.site);
      const reason: DropReason = same >= 0 ? 'superseded' : 'queue_full';
      const [dropped] = this.items.splice(same >= 0 ? same : 0, 1);
      this.dropped[reason]++;
      result = { dropped, reason };
    }
    this.items.push(frame);
    return result;
  }

  /** Next frame, waiting if none; undefined once closed and empty. */
  take(): Promise<Frame | undefined> {
    const next = this.items.shift();
    if (next) return Promise.resolve(next);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stop handing out frames; returns those still queued (their sources release them). */
  close(): Frame[] {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w(undefined);
    return this.items.splice(0);
  }
}
