import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import type { HubEvent, HubEventName, HubEvents } from './hub-events';

export interface PublishOptions {
  /**
   * Events with the same key within COALESCE_MS are delivered once, as the last one (e.g.
   * `device:<id>` for heartbeats: a screen needs a device's newest state, not every beat).
   */
  coalesce?: string;
}

/** Timers the bus uses; tests pass their own. */
export interface BusTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: BusTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * The hub's one home for events pushed to people (the console's live screens). Publishing is
 * a one-liner from any service: `this.events.publish('device', dto, { coalesce: \`device:${id}\` })`.
 * With nobody listening it costs nothing. Events are this replica's: a hub behind a load
 * balancer pushes what it handled itself.
 */
@Injectable()
export class EventBus implements OnModuleDestroy {
  static readonly COALESCE_MS = 1000;
  private readonly subject = new Subject<HubEvent>();
  private readonly pending = new Map<string, HubEvent>();
  private flushTimer: unknown;
  private listeners = 0;

  constructor(private readonly timers: BusTimers = realTimers) {}

  publish<N extends HubEventName>(name: N, data: HubEvents[N], options: PublishOptions = {}): void {
    if (this.listeners === 0) return;
    const event = { name, data } as HubEvent;
    if (!options.coalesce) {
      this.subject.next(event);
      return;
    }
    // Keep the first arrival's place in the queue, with the newest data.
    this.pending.delete(options.coalesce);
    this.pending.set(options.coalesce, event);
    this.flushTimer ??= this.timers.setTimeout(() => this.flush(), EventBus.COALESCE_MS);
  }

  /** Every event from now on, until unsubscribed. */
  stream(): Observable<HubEvent> {
    return new Observable<HubEvent>((subscriber) => {
      this.listeners++;
      const sub = this.subject.subscribe(subscriber);
      return () => {
        sub.unsubscribe();
        this.listeners--;
      };
    });
  }

  /** Open streams (console tabs with a live screen). */
  get listenerCount(): number {
    return this.listeners;
  }

  onModuleDestroy(): void {
    if (this.flushTimer !== undefined) this.timers.clearTimeout(this.flushTimer);
    this.subject.complete();
  }

  private flush(): void {
    this.flushTimer = undefined;
    const events = [...this.pending.values()];
    this.pending.clear();
    for (const e of events) this.subject.next(e);
  }
}
