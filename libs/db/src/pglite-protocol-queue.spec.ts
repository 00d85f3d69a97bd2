import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { runConcurrencyCheck } from './concurrency-check';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded';
import { PgliteProtocolQueue } from './pglite-protocol-queue';

/** A PostgreSQL wire-protocol client by hand, to send an exchange's messages exactly when a test wants. */
class RawConnection {
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = netConnect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawConnection(socket);
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0');
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(8 + params.length, 0);
    startup.writeInt32BE(196_608, 4);
    c.socket.write(Buffer.concat([startup, params]));
    await c.untilReady();
    return c;
  }

  parse(sql: string): void {
    this.send('P', Buffer.concat([Buffer.from(`\0${sql}\0`), Buffer.from([0, 0])]));
  }

  /** Bind (no parameters, text results), Describe, Execute and Sync of the unnamed statement. */
  bindExecuteSync(): void {
    this.send('B', Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]));
    this.send('D', Buffer.from('P\0'));
    this.send('E', Buffer.from([0, 0, 0, 0, 0]));
    this.send('S', Buffer.alloc(0));
  }

  query(sql: string): void {
    this.send('Q', Buffer.from(`${sql}\0`));
  }

  /** The messages up to ReadyForQuery: the column names, the rows (text) and any error. */
  async untilReady(timeoutMs = 10_000): Promise<{ columns: string[]; rows: string[][]; error?: string }> {
    const columns: string[] = [];
    const rows: string[][] = [];
    let error: string | undefined;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.buffer.length >= 5 && this.buffer.length >= 1 + this.buffer.readInt32BE(1)) {
        const type = String.fromCharCode(this.buffer[0]!);
        const body = this.buffer.subarray(5, 1 + this.buffer.readInt32BE(1));
        this.buffer = this.buffer.subarray(1 + this.buffer.readInt32BE(1));
        if (type === 'T') {
          let at = 2;
          for (let i = 0; i < body.readInt16BE(0); i++) {
            const end = body.indexOf(0, at);
            columns.push(body.subarray(at, end).toString());
            at = end + 1 + 18;
          }
        } else if (type === 'D') {
          const row: string[] = [];
          let at = 2;
          for (let i = 0; i < body.readInt16BE(0); i++) {
            const len = body.readInt32BE(at);
            row.push(body.subarray(at + 4, at + 4 + len).toString());
            at += 4 + len;
          }
          rows.push(row);
        } else if (type === 'E') {
          error = body.toString().split('\0').find((f) => f.startsWith('M'))?.slice(1);
        } else if (type === 'Z') {
          return { columns, rows, ...(error ? { error } : {}) };
        }
      }
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('no ReadyForQuery');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private send(type: string, body: Buffer): void {
    const head = Buffer.alloc(5);
    head.write(type, 0);
    head.writeInt32BE(4 + body.length, 1);
    this.socket.write(Buffer.concat([head, body]));
  }
}

const settle = (ms = 200) => new Promise((r) => setTimeout(r, ms));

describe(PgliteProtocolQueue.name, () => {
  let sut: EmbeddedPostgres;
  let dir: string;
  const opened: Array<Client | RawConnection> = [];

  async function client(): Promise<Client> {
    const c = new Client(sut.url);
    c.on('error', () => undefined);
    await c.connect();
    opened.push(c);
    return c;
  }
  async function raw(): Promise<RawConnection> {
    const c = await RawConnection.open(sut.port);
    opened.push(c);
    return c;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shelfsight-pglite-queue-'));
    sut = await startEmbeddedPostgres({ dataDir: dir, queue: { exchangeIdleMs: 1500, transactionIdleMs: 3000 } });
    await (await client()).query('CREATE TABLE queue_probe (n int)');
  }, 60_000);

  afterEach(async () => {
    for (const c of opened.splice(0)) {
      if (c instanceof RawConnection) c.destroy();
      else await c.end().catch(() => undefined);
    }
  });

  afterAll(async () => {
    await sut?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs another connection’s query only after an exchange it finds half sent is whole (its Bind would otherwise meet the other’s Parse)', async () => {
    const a = await raw();
    const b = await client();
    a.parse('SELECT 1 AS from_a');
    await settle();
    // b's whole exchange arrives between a's Parse and a's Bind.
    const bAnswer = b.query<{ from_b: number }>('SELECT $1::int AS from_b', [2]);
    await settle();
    a.bindExecuteSync();
    expect(await a.untilReady()).toEqual({ columns: ['from_a'], rows: [['1']] });
    expect((await bAnswer).rows).toEqual([{ from_b: 2 }]);
  });

  it('keeps a transaction to its connection: another waits for it, then sees it committed', async () => {
    const [a, b] = [await client(), await client()];
    await a.query('BEGIN');
    await a.query('INSERT INTO queue_probe VALUES (1)');
    const seen = b.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_probe WHERE n = 1');
    await settle();
    await a.query('COMMIT');
    expect((await seen).rows[0]!.n).toBe(1);
  });

  it('rolls back the transaction of a connection that goes with it open, and lets the others run', async () => {
    const b = await client();
    const leaver = new Client(sut.url);
    await leaver.connect();
    await leaver.query('BEGIN');
    await leaver.query('INSERT INTO queue_probe VALUES (2)');
    await leaver.end();
    expect((await b.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_probe WHERE n = 2')).rows[0]!.n).toBe(0);
  });

  it('closes a connection that leaves an exchange unfinished while others wait, ends its exchange, and the others get their own rows', async () => {
    const stuck = await raw();
    stuck.parse('SELECT 99 AS stuck');
    await settle();
    const started = Date.now();
    const b = await client(); // its StartupMessage waits too
    const r = await b.query<{ v: number }>('SELECT $1::int AS v', [7]);
    expect(r.rows).toEqual([{ v: 7 }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    await settle();
    expect(stuck.closed).toBe(true);
  });

  it('closes a connection idle in a transaction while others wait, rolling it back', async () => {
    const idle = await client();
    await idle.query('BEGIN');
    await idle.query('INSERT INTO queue_probe VALUES (3)');
    const b = await client();
    // Waits for the idle transaction's limit (3 s here), not for ever.
    const r = await b.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_probe WHERE n = 3');
    expect(r.rows[0]!.n).toBe(0);
    await expect(idle.query('COMMIT')).rejects.toThrow();
  });

  it('delivers a NOTIFY to the connections listening on its channel, not to the one that sent it', async () => {
    const [listener, other, notifier] = [await client(), await client(), await client()];
    const heard = { listener: [] as string[], other: [] as string[], notifier: [] as string[] };
    listener.on('notification', (n) => heard.listener.push(`${n.channel}:${n.payload}`));
    other.on('notification', (n) => heard.other.push(`${n.channel}:${n.payload}`));
    notifier.on('notification', (n) => heard.notifier.push(`${n.channel}:${n.payload}`));
    await listener.query('LISTEN shelf_events');
    await other.query('LISTEN "Other"');
    await notifier.query("NOTIFY shelf_events, 'one'");
    await notifier.query('BEGIN');
    await notifier.query("SELECT pg_notify('shelf_events', $1)", ['two']);
    await notifier.query('COMMIT');
    await notifier.query(`SELECT pg_notify('Other', 'three')`);
    await settle();
    expect(heard).toEqual({ listener: ['shelf_events:one', 'shelf_events:two'], other: ['Other:three'], notifier: [] });
    await listener.query('UNLISTEN *');
    await notifier.query("NOTIFY shelf_events, 'four'");
    await settle();
    expect(heard.listener).toEqual(['shelf_events:one', 'shelf_events:two']);
  });

  it('answers concurrent clients — one with 200 KB parameters, one in transactions — with no error and no wrong row', async () => {
    const result = await runConcurrencyCheck(sut.url, { queries: 3000, largeEvery: 5 });
    expect(result).toMatchObject({ errors: 0, wrong_rows: 0, failures: [] });
    expect(result.queries).toBeGreaterThanOrEqual(3000);
    expect(result.large_queries).toBeGreaterThan(0);
    expect(result.transactions).toBeGreaterThan(0);
  }, 120_000);
});
