import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { Client } from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded';
import { PgliteProtocolQueue } from './pglite-protocol-queue';

describe(PgliteProtocolQueue.name, () => {
  let sut: EmbeddedPostgres;
  let dir: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shelfsight-pglite-queue-'));
    sut = await startEmbeddedPostgres({ dataDir: dir });
    for (let i = 0; i < 6; i++) {
      const c = new Client(sut.url);
      await c.connect();
      clients.push(c);
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await sut?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps each connection’s extended-protocol exchange whole when a large message arrives in pieces', async () => {
    // One connection sends parameters large enough to arrive in several TCP reads; the others
    // send queries of another shape. Interleaved, a Bind meets another connection's Parse.
    const outcomes = await Promise.all(
      clients.map(async (c, k) => {
        const wrong: string[] = [];
        for (let i = 0; i < 60; i++) {
          try {
            if (k === 0) {
              const r = await c.query<{ v: number }>('SELECT length($1::text) AS v', ['x'.repeat(500_000 + i)]);
              if (r.rows[0]?.v !== 500_000 + i) wrong.push(`big ${i}: ${JSON.stringify(r.rows[0])}`);
            } else {
              const r = await c.query<{ v: number; w: string }>('SELECT $1::int AS v, $2::text AS w', [k * 1000 + i, `c${k}`]);
              if (r.rows[0]?.v !== k * 1000 + i || r.rows[0]?.w !== `c${k}`) wrong.push(`client ${k} query ${i}: ${JSON.stringify(r.rows[0])}`);
            }
          } catch (err) {
            wrong.push(`client ${k} query ${i}: ${(err as Error).message}`);
          }
        }
        return wrong;
      }),
    );
    expect(outcomes.flat()).toEqual([]);
  });

  it('keeps a transaction to its connection, and a connection that leaves one open does not block the others', async () => {
    const [a, b] = clients;
    await a!.query('CREATE TABLE IF NOT EXISTS queue_probe (n int)');
    await a!.query('BEGIN');
    await a!.query('INSERT INTO queue_probe VALUES (1)');
    // b waits for a's transaction (one backend), then sees it committed.
    const seen = b!.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_probe');
    await a!.query('COMMIT');
    expect((await seen).rows[0]!.n).toBe(1);

    const leaver = new Client(sut.url);
    await leaver.connect();
    await leaver.query('BEGIN');
    await leaver.query('INSERT INTO queue_probe VALUES (2)');
    await leaver.end(); // gone with its transaction open: rolled back
    expect((await b!.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_probe')).rows[0]!.n).toBe(1);
  });
});

describe(`${PgliteProtocolQueue.name} (a stalled exchange)`, () => {
  it('lets go of a connection that started an exchange and never finished it, so the others run', async () => {
    const db = await PGlite.create();
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
    (server as unknown as { queryQueue: PgliteProtocolQueue }).queryQueue = new PgliteProtocolQueue(db, 300);
    await server.start();
    const port = Number(server.getServerConn().split(':').pop());
    const stuck = netConnect({ host: '127.0.0.1', port });
    try {
      await new Promise<void>((r) => stuck.once('connect', () => r()));
      // StartupMessage, then a Parse with no Sync after it: the exchange is left open.
      const params = Buffer.from('user\0postgres\0database\0postgres\0\0');
      const startup = Buffer.alloc(8);
      startup.writeInt32BE(8 + params.length, 0);
      startup.writeInt32BE(196_608, 4);
      stuck.write(Buffer.concat([startup, params]));
      await new Promise<void>((r) => stuck.once('data', () => r())); // AuthenticationOk … ReadyForQuery
      const body = Buffer.concat([Buffer.from('\0SELECT 1\0'), Buffer.from([0, 0])]);
      const parse = Buffer.alloc(5);
      parse.write('P', 0);
      parse.writeInt32BE(4 + body.length, 1);
      stuck.write(Buffer.concat([parse, body]));
      await new Promise((r) => setTimeout(r, 100));

      const other = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      await other.connect();
      const started = Date.now();
      const r = await other.query<{ v: number }>('SELECT $1::int AS v', [7]);
      expect(r.rows[0]!.v).toBe(7);
      expect(Date.now() - started).toBeLessThan(5000);
      await other.end();
    } finally {
      stuck.destroy();
      await server.stop();
      await db.close();
    }
  });
});
