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
const PARSE = 0x50; // 'P'
const NOTIFICATION = 0x41; // 'A'
const SYNC_MESSAGE = new Uint8Array([SYNC, 0, 0, 0, 4]);
/** LISTEN name / UNLISTEN name / UNLISTEN * (name plain or double-quoted). */
const LISTEN_STATEMENT = /\b(UN)?LISTEN\s+(\*|"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)/gi;
const ROLLBACK_MESSAGE = queryMessage('ROLLBACK');

/** A connection closed because it held the backend without sending anything while others waited. */
export interface AbandonedConnection {
  handlerId: number;
  /** It held a transaction (else an extended-protocol exchange: Parse … without its Sync). */
  inTransaction: boolean;
  idleMs: number;
  /** What it ran last (message type and the start of its SQL), for the log. */
  last: string;
}

export interface PgliteProtocolQueueOptions {
  /** An exchange (Parse, Bind, … not yet its Sync) whose next message does not come for this long while others wait: its connection is closed. */
  exchangeIdleMs?: number;
  /** A transaction whose connection sends nothing for this long while others wait: its connection is closed (PostgreSQL's idle_in_transaction_session_timeout, applied only when someone waits). */
  transactionIdleMs?: number;
  /** Closes a connection (the socket server's handler); its close then releases the backend through {@link PgliteProtocolQueue.clearTransactionIfNeeded}. */
  close?: (handlerId: number) => void;
  /** Told of each connection closed for holding the backend idle. */
  onAbandoned?: (connection: AbandonedConnection) => void;
}

/**
 * The queue in front of PGlite's one backend for pglite-socket's connections, keeping each
 * connection's protocol exchange whole.
 *
 * pglite-socket's own queue runs the connections' messages one at a time in arrival order
 * and keeps a connection to itself only inside a transaction. The extended query protocol
 * is several messages (Parse, Bind, Describe, Execute, then Sync) sharing the unnamed
 * statement and portal, and a connection hands its next message over only when the previous
 * one is done, so two busy connections take turns message by message: a Bind meets another
 * connection's Parse and the query fails or returns someone else's rows (electric-sql/pglite
 * issue 1046; 20% of queries with six busy connections). Here a connection that started an
 * exchange holds the backend until its Sync (or simple Query) is done and no transaction is
 * open; the others' messages wait, in order.
 *
 * One backend means one connection's open transaction or exchange stops everyone else, as a
 * lock would (a cursor read in pieces, Execute with a row limit then Flush, holds it between
 * its reads). A connection that goes while holding it is let go: the queue ends its exchange
 * (Sync) and rolls its transaction back. One that stays but sends nothing while others wait
 * (`exchangeIdleMs`, `transactionIdleMs`) is closed, as PostgreSQL closes a session idle in a
 * transaction, and reported: a client's code waiting, inside a transaction, for a query on
 * another connection would otherwise wait for ever. An error in one message rejects that
 * message only; the queue goes on.
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
  /** When each connection's last message arrived or was answered, and the message (described only for a log line). */
  private readonly lastSeen = new Map<number, { at: number; message: Uint8Array }>();
  private idleWatch: NodeJS.Timeout | undefined;
  private closed = false;
  /** The channels each connection listens on (from its LISTEN / UNLISTEN statements), and where its answers go. */
  private readonly listening = new Map<number, { channels: Set<string>; onData: (data: Uint8Array) => void }>();
  private readonly exchangeIdleMs: number;
  private readonly transactionIdleMs: number;

  constructor(
    private readonly db: PGlite,
    private readonly opts: PgliteProtocolQueueOptions = {},
  ) {
    this.exchangeIdleMs = opts.exchangeIdleMs ?? 10_000;
    this.transactionIdleMs = opts.transactionIdleMs ?? 60_000;
  }

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    this.lastSeen.set(handlerId, { at: Date.now(), message });
    this.trackListen(handlerId, message, onData);
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

  /** A connection went: end what it left open, and let the others run. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    this.lastSeen.delete(handlerId);
    this.listening.delete(handlerId);
    // A message of it is running: the queue lets it go when that is done (see processQueue).
    if (this.owner !== handlerId || this.inFlight === handlerId) return;
    this.owner = null;
    await this.reset();
    await this.processQueue();
  }

  /** Stops the idle watch for good (the server is closing; the database may close under it). */
  close(): void {
    this.closed = true;
    this.stopIdleWatch();
  }

  /** Whether a transaction is open; false once PGlite is closed (it throws then). */
  private inTransaction(): boolean {
    try {
      return this.db.isInTransaction();
    } catch {
      return false;
    }
  }

  private stopIdleWatch(): void {
    if (this.idleWatch) clearInterval(this.idleWatch);
    this.idleWatch = undefined;
  }

  private async processQueue(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      for (;;) {
        if (this.queue.length === 0) return;
        const index = this.owner === null ? 0 : this.queue.findIndex((q) => q.handlerId === this.owner);
        if (index < 0) return this.watchIdleOwner(); // the owner's next message has not arrived yet
        const [item] = this.queue.splice(index, 1);
        this.inFlight = item!.handlerId;
        let bytes = 0;
        // One session: a NOTIFY's NotificationResponse comes out in the answer of whoever ran
        // the statement that committed it; it goes to the connections that listen instead.
        const answer = this.listening.size === 0 ? undefined : new AnswerSplitter(item!.onData, (m, channel) => this.notify(m, channel));
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item!.message, {
              // Files are synced once an exchange ends (Sync, Query), not after each of its messages.
              syncToFs: endsExchange(item!.message),
              onRawData: (data: Uint8Array) => {
                bytes += data.length;
                if (answer) answer.push(data);
                else item!.onData(data);
              },
            }),
          );
          answer?.end();
          item!.resolve(bytes);
        } catch (err) {
          item!.reject(err as Error);
        }
        this.inFlight = null;
        const seen = this.lastSeen.get(item!.handlerId);
        if (seen) seen.at = Date.now(); // silence counts from the answer, not from the question
        this.owner = this.ownerAfter(item!);
        // A connection that said goodbye or went meanwhile leaves nothing open (only its
        // messages ran, so whatever is open is its own).
        if (isTerminate(item!.message) || this.gone.delete(item!.handlerId)) {
          this.owner = null;
          await this.reset();
        }
      }
    } finally {
      this.processing = false;
    }
  }

  /**
   * Ends an exchange a connection left unfinished (Sync) and rolls back a transaction it left
   * open. Their answers go nowhere: through a stream of our own, because PGlite's other entry
   * points (exec, execProtocolRaw) write to the last stream's receiver, a live connection's
   * socket, where a stray ReadyForQuery would end that client's next query early.
   */
  private async reset(): Promise<void> {
    const discard = { onRawData: () => undefined };
    await this.db
      .runExclusive(async () => {
        await this.db.execProtocolRawStream(SYNC_MESSAGE, discard);
        if (this.inTransaction()) await this.db.execProtocolRawStream(ROLLBACK_MESSAGE, discard);
      })
      .catch(() => undefined);
  }

  /** While others wait for the owner's next message, check now and then how long it has been silent. */
  private watchIdleOwner(): void {
    if (this.idleWatch || this.closed) return;
    const every = Math.max(10, Math.min(1000, Math.floor(Math.min(this.exchangeIdleMs, this.transactionIdleMs) / 4)));
    this.idleWatch = setInterval(() => this.checkIdleOwner(), every);
    this.idleWatch.unref();
  }

  private checkIdleOwner(): void {
    const owner = this.owner;
    const waiting = owner !== null && this.queue.length > 0 && !this.queue.some((q) => q.handlerId === owner);
    if (!waiting || this.inFlight !== null) {
      if (!waiting) this.stopIdleWatch();
      if (owner === null && this.queue.length > 0) void this.processQueue();
      return;
    }
    const seen = this.lastSeen.get(owner);
    const idleMs = Date.now() - (seen?.at ?? 0);
    const inTransaction = this.inTransaction();
    if (idleMs < (inTransaction ? this.transactionIdleMs : this.exchangeIdleMs)) return;
    this.stopIdleWatch();
    this.opts.onAbandoned?.({ handlerId: owner, inTransaction, idleMs, last: seen ? describe(seen.message) : '' });
    this.opts.close?.(owner);
    // Whether or not its close comes back here (it does, through the handler's detach), the others go on.
    void this.clearTransactionIfNeeded(owner);
  }

  /** Follows a connection's LISTEN / UNLISTEN statements (PGlite has one session: the server cannot tell whose they are). */
  private trackListen(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): void {
    const type = message[0];
    if (type !== QUERY && type !== PARSE) return;
    const sql = statementText(message);
    if (!/listen/i.test(sql)) return;
    const entry = this.listening.get(handlerId) ?? { channels: new Set<string>(), onData };
    entry.onData = onData;
    for (const [, un, name] of sql.matchAll(LISTEN_STATEMENT)) {
      const channel = name!.startsWith('"') ? name!.slice(1, -1).replace(/""/g, '"') : name!.toLowerCase();
      if (!un) entry.channels.add(channel);
      else if (channel === '*') entry.channels.clear();
      else entry.channels.delete(channel);
    }
    if (entry.channels.size > 0) this.listening.set(handlerId, entry);
    else this.listening.delete(handlerId);
  }

  private notify(message: Uint8Array, channel: string): void {
    for (const { channels, onData } of this.listening.values()) if (channels.has(channel)) onData(message);
  }

  private ownerAfter(item: Queued): number | null {
    const m = item.message;
    if (isStartup(m)) return this.owner;
    if (isTerminate(m)) return null;
    const type = m[0];
    if (type === SYNC || type === QUERY) return this.inTransaction() ? item.handlerId : null;
    return item.handlerId; // Parse, Bind, Describe, Execute, Close, Flush…: the exchange goes on
  }
}

function isStartup(m: Uint8Array): boolean {
  // A StartupMessage has no type byte: its length, then the protocol version.
  if (m.length < 8) return false;
  const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
  return view.getInt32(0) === m.length && view.getInt32(4) === PROTOCOL_3;
}

function endsExchange(m: Uint8Array): boolean {
  return m[0] === SYNC || m[0] === QUERY || isTerminate(m) || isStartup(m);
}

function isTerminate(m: Uint8Array): boolean {
  return m.length === 5 && m[0] === TERMINATE;
}

function queryMessage(sql: string): Uint8Array {
  const body = Buffer.from(`${sql}\0`);
  const m = Buffer.alloc(5 + body.length);
  m.write('Q', 0);
  m.writeInt32BE(4 + body.length, 1);
  body.copy(m, 5);
  return new Uint8Array(m);
}

/** The SQL of a Parse (name\0 query\0 …) or Query (query\0) message. */
function statementText(m: Uint8Array, max = m.length): string {
  let from = 5;
  if (m[0] === PARSE) {
    while (from < m.length && m[from] !== 0) from++;
    from++;
  }
  let to = from;
  while (to < Math.min(m.length, from + max) && m[to] !== 0) to++;
  return Buffer.from(m.buffer, m.byteOffset + from, to - from).toString('utf8');
}

/** A message for the log: its type, and the start of its SQL for a Parse or Query. */
function describe(m: Uint8Array): string {
  if (isStartup(m)) return 'startup';
  const type = String.fromCharCode(m[0] ?? 0);
  if (m[0] !== PARSE && m[0] !== QUERY) return type;
  return `${type} ${statementText(m, 200).replace(/\s+/g, ' ').trim().slice(0, 120)}`;
}

/**
 * One message's answer, split into protocol messages on the way to its connection: all of
 * them pass in order, except NotificationResponses, handed to `notify` with their channel.
 */
class AnswerSplitter {
  private carry = Buffer.alloc(0);

  constructor(
    private readonly pass: (data: Uint8Array) => void,
    private readonly notify: (message: Uint8Array, channel: string) => void,
  ) {}

  push(data: Uint8Array): void {
    const chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    let start = 0;
    let at = 0;
    while (buf.length - at >= 5 && buf.length - at >= 1 + buf.readInt32BE(at + 1)) {
      const end = at + 1 + buf.readInt32BE(at + 1);
      if (buf[at] === NOTIFICATION) {
        if (at > start) this.pass(buf.subarray(start, at));
        const message = Buffer.from(buf.subarray(at, end)); // body: pid (4 bytes), channel\0, payload\0
        this.notify(message, message.toString('utf8', 9, message.indexOf(0, 9)));
        start = end;
      }
      at = end;
    }
    if (at > start) this.pass(buf.subarray(start, at));
    this.carry = Buffer.from(buf.subarray(at)); // a message not complete yet: the rest comes in the next piece
  }

  end(): void {
    if (this.carry.length > 0) this.pass(this.carry);
    this.carry = Buffer.alloc(0);
  }
}
