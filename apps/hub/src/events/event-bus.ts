import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { ClusterBus, SoloClusterBus } from '../cluster/cluster-bus';
import { RateLimitedLog } from '../common/rate-limited-log';
import { decodeClusterEvent, encodeClusterEvent, EVENT_KIND, type EventLoader } from './cluster-events';
import type { HubEvent, HubEventName, HubEvents } from './hub-events';

export interface PublishOptions {
  /**
   * Events with the same key within COALESCE_MS are delivered once, as the last one (e.g.
   * `device:<id>` for heartbeats: a screen needs a device's newest state, not every beat).
   */
  coalesce?: string;
  /**
   * Every replica sees this change itself (a job's progress, which each replica with a live
   * screen reads from the database): deliver to this replica's streams only.
   */
  local?: boolean;
}

/** An event on its way out: to this replica's streams, and to the others' unless it is `local` or came from them. */
interface Outgoing {
  event: HubEvent;
  coalesce?: string;
  toCluster: boolean;
}

/** Timers the bus uses; tests pass their own. */
export interface BusTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: BusTimers = {
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
 *
 * Every replica's clients see every replica's events: what this replica publishes (after its
 * own coalescing window) also goes to the others over the {@link ClusterBus}, which deliver it
 * to their streams, coalesced again there (with what they saw themselves); a replica never
 * gets its own back, nor sends on what it got. An event too large for one NOTIFY goes as its
 * name and id, and the receiving replica reads it again through the loader its feature
 * registered ({@link resolveWith}). With nobody listening anywhere, a replica still sends:
 * one NOTIFY per batch of events (the coalesced ones at most once per window, packed).
 */
@Injectable()
export class EventBus implements OnModuleDestroy {
  static readonly COALESCE_MS = 1000;
  private readonly subject = new Subject<HubEvent>();
  private readonly pending = new Map<string, Outgoing>();
  private readonly loaders = new Map<HubEventName, EventLoader>();
  private readonly log = new RateLimitedLog((line) => new Logger('Events').warn(line), 5000);
  private flushTimer: unknown;
  private listeners = 0;
  private readonly clustered: boolean;

  constructor(
    private readonly timers: BusTimers = realTimers,
    private readonly cluster: ClusterBus = new SoloClusterBus(),
  ) {
    this.clustered = !(cluster instanceof SoloClusterBus);
    cluster.on(EVENT_KIND, (body) => void this.receive(body));
  }

  /** How a feature whose events can be large gets one again by id (see the class comment). */
  resolveWith<N extends HubEventName>(name: N, loader: (id: string) => Promise<HubEvents[N] | undefined>): void {
    this.loaders.set(name, loader as EventLoader);
  }

  publish<N extends HubEventName>(name: N, data: HubEvents[N], options: PublishOptions = {}): void {
    const toCluster = this.clustered && !options.local;
    if (this.listeners === 0 && !toCluster) return;
    this.enqueue({ event: { name, data } as HubEvent, coalesce: options.coalesce, toCluster });
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

  private enqueue(out: Outgoing): void {
    if (!out.coalesce) {
      this.emit(out);
      return;
    }
    // Keep the first arrival's place in the queue, with the newest data (sent on if any of the merged was to be).
    const before = this.pending.get(out.coalesce);
    this.pending.delete(out.coalesce);
    this.pending.set(out.coalesce, { ...out, toCluster: out.toCluster || (before?.toCluster ?? false) });
    this.flushTimer ??= this.timers.setTimeout(() => this.flush(), EventBus.COALESCE_MS);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const events = [...this.pending.values()];
    this.pending.clear();
    for (const e of events) this.emit(e);
  }

  /** To this replica's streams, and to the other replicas' when it happened here. */
  private emit(out: Outgoing): void {
    if (this.listeners > 0) this.subject.next(out.event);
    if (out.toCluster) this.cluster.send(EVENT_KIND, encodeClusterEvent(out.event, (body) => this.cluster.fits(EVENT_KIND, body), out.coalesce));
  }

  /** Another replica's event, for this replica's streams: coalesced here too (with what this replica saw itself), never sent on. */
  private async receive(body: unknown): Promise<void> {
    if (this.listeners === 0) return;
    try {
      const got = await decodeClusterEvent(body, (name) => this.loaders.get(name));
      if (got && this.listeners > 0) this.enqueue({ event: got.event, coalesce: got.coalesce, toCluster: false });
    } catch (err) {
      this.log.warn(`an event from another replica was not delivered: ${(err as Error).message}`);
    }
  }
}
