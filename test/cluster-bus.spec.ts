import { Client, Pool } from 'pg';
import { ClusterLock, PgNotifyClusterBus } from '@shelfsight/hub';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/databases';
import { eventually } from './support/test-hub';
import { hasExternalPostgres } from './support/services';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

/** The cluster bus and lock on a real database: what the hub replicas of one database share. */
for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`cluster bus over LISTEN/NOTIFY (${variant.db})`, () => {
    jest.setTimeout(120_000);
    let db: TestDatabase;
    let pool: Pool;
    const buses: PgNotifyClusterBus[] = [];
    const connect = () => new Client({ connectionString: db.url });
    const replica = async () => {
      const bus = new PgNotifyClusterBus(pool, connect);
      buses.push(bus);
      await bus.start(30_000);
      await bus.ready();
      return bus;
    };

    beforeAll(async () => {
      db = await createTestDatabase(variant.db);
      pool = new Pool({ connectionString: db.url, max: 1 });
    }, 120_000);

    afterAll(async () => {
      for (const b of buses) await b.close();
      await pool?.end();
      await db?.drop();
    });

    it('carries a replica\u2019s messages to the others, in order, never back to itself', async () => {
      const a = await replica();
      const b = await replica();
      const atA: unknown[] = [];
      const atB: unknown[] = [];
      a.on('test', (m) => atA.push(m));
      b.on('test', (m) => atB.push(m));
      // 400 messages in one turn: several NOTIFY payloads, each under the limit.
      for (let i = 0; i < 400; i++) a.send('test', { i, pad: 'x'.repeat(60) });
      b.send('test', { from: 'b' });
      await eventually(async () => (atB.length === 400 && atA.length === 1 ? true : undefined), 30_000, 'every message at the other replica');
      expect(atB.map((m) => (m as { i: number }).i)).toEqual(Array.from({ length: 400 }, (_, i) => i));
      expect(atA).toEqual([{ from: 'b' }]);
      // Nothing more arrives later (no echo of a replica's own messages).
      await new Promise((r) => setTimeout(r, 500));
      expect(atB).toHaveLength(400);
      expect(atA).toHaveLength(1);
    });

    it('reconnects its listening connection after the database dropped it, and says so (resync)', async () => {
      const a = await replica();
      const b = await replica();
      let resyncs = 0;
      b.onResync(() => (resyncs += 1));
      const atB: unknown[] = [];
      b.on('after', (m) => atB.push(m));
      // The database ends B's listening session (as a restart or a failover would).
      const admin = connect();
      await admin.connect();
      try {
        if (variant.db === 'postgres') {
          await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN shelfsight_cluster' AND datname = current_database() AND pid <> pg_backend_pid()`);
        } else {
          // PGlite is one session: end the listening socket from our side instead.
          await (b as unknown as { listener: Client }).listener.end();
        }
      } finally {
        await admin.end();
      }
      await eventually(async () => (resyncs > 0 ? true : undefined), 30_000, 'B listening again');
      await b.ready();
      a.send('after', { n: 1 });
      await eventually(async () => (atB.length === 1 ? true : undefined), 30_000, 'a message after the reconnect');
      expect(atB).toEqual([{ n: 1 }]);
    });

    it('keeps work under one lock to one process at a time', async () => {
      const locks = [new ClusterLock(connect), new ClusterLock(connect)];
      let inside = 0;
      let most = 0;
      let runs = 0;
      const work = async () => {
        runs += 1;
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 20));
        inside -= 1;
      };
      await Promise.all(Array.from({ length: 10 }, (_, i) => locks[i % 2]!.run(42n, work)));
      for (const l of locks) await l.close();
      expect(runs).toBe(10);
      // PGlite is one session for every connection, so there the lock is re-entrant and only
      // each process's own order holds (the embedded database has one replica).
      if (variant.db === 'postgres') expect(most).toBe(1);
    });
  });
}
