import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { Client, Notification, Pool } from 'pg';
import { withTimeout } from '@shelfsight/common';
import { RateLimitedLog } from '../common/rate-limited-log';
import { CLUSTER_CHANNEL, decodePayload, encodeBatch, fitsOneNotify, type ClusterMessage } from './cluster-wire';

type Handler = (body: unknown) => void;

/**
 * Messages between the hub replicas of one database (events for the console, cache
 * invalidations). `send` reaches every other replica, at most once each and never the
 * sender; what a replica must do itself on the change it handled, it does directly.
 * Delivery is best effort: a replica whose listening connection was down missed what was
 * sent meanwhile, so it hears `onResync` when it is back (caches drop everything then).
 */
export abstract class ClusterBus {
  /** This replica's id on the wire. */
  abstract readonly origin: string;
  abstract send(kind: string, body: unknown): void;
  /** Whether `body` is small enough to go as it is (else send a reference to it). */
  abstract fits(kind: string, body: unknown): boolean;
  abstract on(kind: string, handler: Handler): () => void;
  abstract onResync(handler: () => void): () => void;
}

/** One hub alone (unit tests, the bench's stage modules): nobody to tell. */
export class SoloClusterBus extends ClusterBus {
  readonly origin = 'solo';
  send(_kind: string, _body: unknown): void {}
  fits(_kind: string, _body: unknown): boolean {
    return true;
  }
  on(_kind: string, _handler: Handler): () => void {
    return () => undefined;
  }
  onResync(_handler: () => void): () => void {
    return () => undefined;
  }
}

/** Waits between reconnects of the listening connection: doubling from the first to the last. */
export const RECONNECT_BACKOFF_MS = { first: 250, max: 10_000 };

/**
 * The cluster bus over PostgreSQL LISTEN/NOTIFY: a NOTIFY per batch of messages through the
 * hub's pool (messages sent in the same turn of the event loop share one), and one
 * dedicated connection that LISTENs (reconnected with backoff when it drops; the pool's
 * connections stay for queries). Payloads stay under 8000 bytes: bodies are ids and small
 * rows, see {@link encodeBatch}.
 */
export class PgNotifyClusterBus extends ClusterBus {
  readonly origin = randomBytes(6).toString('hex');
  private readonly log = new Logger('Cluster');
  private readonly noisy = new RateLimitedLog((line) => this.log.warn(line), 5000);
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly resyncHandlers = new Set<() => void>();
  private queue: ClusterMessage[] = [];
  private flushing = false;
  private listener?: Client;
  private retry?: NodeJS.Timeout;
  private backoff = RECONNECT_BACKOFF_MS.first;
  private listenedBefore = false;
  private closed = false;
  private listening!: Promise<void>;
  private markListening!: () => void;

  /** `pool`: the hub's pool, for NOTIFY; `connect`: a new (unconnected) client for the listening connection. */
  constructor(
    private readonly pool: Pool,
    private readonly connect: () => Client,
  ) {
    super();
    this.resetListening();
  }

  /** Starts listening; resolves once LISTEN is in effect or after `waitMs` (it keeps trying in the background). */
  async start(waitMs = 5000): Promise<void> {
    void this.listen();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.listening, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  /** Resolves when the listening connection has LISTENed (again). */
  ready(): Promise<void> {
    return this.listening;
  }

  send(kind: string, body: unknown): void {
    if (this.closed) return;
    this.queue.push({ kind, body });
    if (this.queue.length === 1 && !this.flushing) setImmediate(() => void this.flush());
  }

  fits(kind: string, body: unknown): boolean {
    return fitsOneNotify(this.origin, { kind, body });
  }

  on(kind: string, handler: Handler): () => void {
    let set = this.handlers.get(kind);
    if (!set) this.handlers.set(kind, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  onResync(handler: () => void): () => void {
    this.resyncHandlers.add(handler);
    return () => this.resyncHandlers.delete(handler);
  }

  /**
   * Idempotent. Closed first: a reconnect timer, or a listen in progress, stops here even when
   * the last flush hangs on a database that is gone (a hub stopped after its database; a
   * reconnect loop left behind would open connections in whatever runs next in the process).
   */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await withTimeout(this.flush(), 3000);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => undefined);
  }

  /** Sends what is queued, in order (one flush at a time). */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const { payloads, oversize } = encodeBatch(this.origin, batch);
        for (const m of oversize) this.noisy.warn(`cluster message '${m.kind}' too large for NOTIFY; not sent to other replicas`);
        for (const payload of payloads) {
          try {
            await this.pool.query('SELECT pg_notify($1, $2)', [CLUSTER_CHANNEL, payload]);
          } catch (err) {
            this.noisy.warn(`could not notify the other replicas: ${(err as Error).message}`);
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = this.connect();
    this.listener = client;
    let failed = false;
    const fail = (err: Error | undefined) => {
      if (failed || this.closed) return;
      failed = true;
      if (this.listener === client) this.listener = undefined;
      this.noisy.warn(`listening connection lost (${err?.message ?? 'ended'}); reconnecting in ${this.backoff} ms`);
      client.end().catch(() => undefined);
      this.resetListening();
      this.retry = setTimeout(() => void this.listen(), this.backoff);
      this.retry.unref();
      this.backoff = Math.min(this.backoff * 2, RECONNECT_BACKOFF_MS.max);
    };
    client.on('error', fail);
    client.on('end', () => fail(undefined));
    client.on('notification', (n: Notification) => this.receive(n));
    try {
      await client.connect();
      await client.query(`LISTEN ${CLUSTER_CHANNEL}`);
    } catch (err) {
      fail(err as Error);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.backoff = RECONNECT_BACKOFF_MS.first;
    // Back after a gap: what was sent meanwhile is lost; whoever caches drops it all.
    if (this.listenedBefore) for (const h of this.resyncHandlers) this.safely(() => h(), 'resync');
    this.listenedBefore = true;
    this.markListening();
  }

  private receive(n: Notification): void {
    if (n.channel !== CLUSTER_CHANNEL || n.payload === undefined) return;
    let messages: ClusterMessage[];
    try {
      messages = decodePayload(this.origin, n.payload).messages;
    } catch (err) {
      this.noisy.warn(`ignored a NOTIFY on ${CLUSTER_CHANNEL}: ${(err as Error).message}`);
      return;
    }
    for (const m of messages) {
      for (const h of this.handlers.get(m.kind) ?? []) this.safely(() => h(m.body), m.kind);
    }
  }

  private safely(fn: () => void, what: string): void {
    try {
      fn();
    } catch (err) {
      this.noisy.warn(`cluster handler for '${what}' failed: ${(err as Error).message}`);
    }
  }

  private resetListening(): void {
    this.listening = new Promise<void>((resolve) => (this.markListening = resolve));
  }
}
