import type { PGlite } from '@electric-sql/pglite';

interface Queued {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (err: Error) => void;
}

/** PostgreSQL protocol 3.0, the version field of a StartupMessage. */
const PROTOCOL_3 = 196_608;
const SYNC = 0x53; // 'S'
const QUERY = 0x51; // 'Q'
const TERMINATE = 0x58; // 'X'

/**
 * The queue in front of PGlite's one backend for pglite-socket's connections, keeping each
 * connection's protocol exchange whole.
 *
 * pglite-socket's own queue runs the connections' messages one by one and keeps a connection
 * to itself only inside a transaction. The extended query protocol is several messages
 * (Parse, Bind, Describe, Execute, then Sync) sharing the unnamed statement and portal, so
 * when a large message arrives in two TCP reads, another connection's Parse can run between
 * this one's Parse and Bind: then a query binds to someone else's statement and fails or
 * returns the wrong rows (electric-sql/pglite issue 1046; found here as a hub that could not
 * find a training job it had just created). Here a connection that started an exchange
 * holds the backend until its Sync (or simple Query) is done and no transaction is open.
 * An error in one message rejects that message only; the queue goes on.
 */
export class PgliteProtocolQueue {
  private queue: Queued[] = [];
  private processing = false;
  /** The connection whose exchange or transaction is open: only its messages run until it ends. */
  private owner: number | null = null;
  /** The connection whose message PGlite is running now. */
  private inFlight: number | null = null;
  /** Connections that went while one of their messages was running: released once it is done. */
  private readonly gone = new Set<number>();
  private stallTimer?: NodeJS.Timeout;

  /** @param stallMs an exchange (not a transaction) whose next message does not come for this long, while others wait, is let go. */
  constructor(
    private readonly db: PGlite,
    private readonly stallMs = 10_000,
  ) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ handlerId, message, onData, resolve, reject });
      void this.processQueue();
    });
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  clearQueueForHandler(handlerId: number): void {
    this.queue = this.queue.filter((q) => {
      if (q.handlerId !== handlerId) return true;
      q.reject(new Error('Handler disconnected'));
      return false;
    });
    if (this.inFlight === handlerId) this.gone.add(handlerId);
  }

  /** A connection went: roll back what it left open, and let the others run. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    // A message of it is running: the queue lets it go when that is done (see processQueue).
    if (this.owner !== handlerId || this.inFlight === handlerId) return;
    this.owner = null;
    if (this.db.isInTransaction()) await this.db.exec('ROLLBACK').catch(() => undefined);
    await this.processQueue();
  }

  private async processQueue(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      for (;;) {
        const index = this.owner === null ? 0 : this.queue.findIndex((q) => q.handlerId === this.owner);
        if (this.queue.length === 0) return;
        if (index < 0) return this.watchStall(); // the owner's next message has not arrived yet
        const [item] = this.queue.splice(index, 1);
        this.inFlight = item!.handlerId;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item!.message, {
              onRawData: (data: Uint8Array) => {
                bytes += data.length;
                item!.onData(data);
              },
            }),
          );
          item!.resolve(bytes);
        } catch (err) {
          item!.reject(err as Error);
        }
        this.inFlight = null;
        this.owner = this.ownerAfter(item!);
        // A connection that said goodbye or went meanwhile leaves nothing open (inside a transaction it owned the backend).
        if (isTerminate(item!.message) || this.gone.delete(item!.handlerId)) {
          if (this.owner === item!.handlerId) this.owner = null;
          if (this.db.isInTransaction()) await this.db.exec('ROLLBACK').catch(() => undefined);
        }
      }
    } finally {
      this.processing = false;
    }
  }

  /**
   * Others wait for the owner's next message. A transaction may take its time (as on any
   * PostgreSQL, others wait for it here); an extended-protocol exchange is sent in one go, so
   * one whose next message does not come within stallMs is let go, the others run.
   */
  private watchStall(): void {
    if (this.stallTimer) return;
    const owner = this.owner;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.owner !== owner || owner === null || this.db.isInTransaction() || this.queue.some((q) => q.handlerId === owner)) return void this.processQueue();
      this.owner = null;
      void this.processQueue();
    }, this.stallMs);
    this.stallTimer.unref();
  }

  private ownerAfter(item: Queued): number | null {
    const m = item.message;
    const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
    // A StartupMessage has no type byte: its length, then the protocol version.
    const startup = m.length >= 8 && view.getInt32(0) === m.length && view.getInt32(4) === PROTOCOL_3;
    if (startup) return this.owner;
    const type = m[0];
    if (isTerminate(m)) return null;
    if (type === SYNC || type === QUERY) return this.db.isInTransaction() ? item.handlerId : null;
    return item.handlerId; // Parse, Bind, Describe, Execute, Close, Flush…: the exchange goes on
  }
}

function isTerminate(m: Uint8Array): boolean {
  return m.length === 5 && m[0] === TERMINATE;
}
