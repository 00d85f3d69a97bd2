import { withTimeout } from '@shelfsight/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/databases';
import { detection, FakeDevice } from './support/fake-device';
import { hasExternalPostgres } from './support/services';
import { TcpProxy, viaProxy } from './support/tcp-proxy';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`hub during a database outage (${variant.db})`, () => {
    let db: TestDatabase;
    let proxy: TcpProxy;
    let sut: TestHub;
    let device: FakeDevice;
    const site = `outage-${randomBytes(3).toString('hex')}`;

    beforeAll(async () => {
      db = await createTestDatabase(variant.db);
      const u = new URL(db.url);
      proxy = await TcpProxy.start(u.hostname, Number(u.port));
      // Tiny in-memory bound so the outage also exercises backpressure.
      sut = await startTestHub(variant.db, 'aedes', { DATABASE_URL: viaProxy(db.url, proxy), INGEST_MAX_PENDING: '6' });
      device = await FakeDevice.connect(sut.hub.mqttUrl, `dev-${randomBytes(3).toString('hex')}`);
    });

    afterAll(async () => {
      await device?.close();
      await sut?.hub.stop();
      await sut?.db.drop(); // the hub's own (unused) test database
      await proxy?.close();
      await db?.drop();
    });

    it('acknowledges nothing while the database is down, keeps memory bounded, loses nothing and resumes by itself', async () => {
      const batch = (seq: number) => [
        detection(seq, { site, location: `A-01-${seq}-A`, category: seq % 2 ? 'milk' : 'juice' }),
      ];
      await device.sendDetections(batch(1));
      await device.waitForAcks([1]);

      proxy.cut();
      const during = Array.from({ length: 12 }, (_, i) => i + 2);
      for (const seq of during) await device.sendDetections(batch(seq));
      const health = await eventually(async () => {
        const h = await getJson<{ database: string }>(`${sut.hub.httpUrl}/health`);
        return h.status === 503 && h.body.database === 'down' ? h : undefined;
      });
      expect(health.body.database).toBe('down');
      // The process is alive all the same: the liveness probe must not restart a hub over a database outage.
      expect((await fetch(`${sut.hub.httpUrl}/health/live`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1500));
      expect(during.filter((s) => device.acked.has(s))).toEqual([]);
      const metrics = await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text();
      expect(Number(/shelfsight_batches_deferred_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
      expect(Number(/shelfsight_ingest_pending (\d+)/.exec(metrics)?.[1])).toBeLessThanOrEqual(6);
      expect(Number(/shelfsight_commit_errors_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);

      proxy.restore();
      // What the hub had accepted is committed and acknowledged without any help...
      await eventually(async () => (during.some((s) => device.acked.has(s)) ? true : undefined), 30_000, 'acks after restore');
      // ...and what it refused is resent by the device, as an agent does for unacknowledged data.
      await eventually(
        async () => {
          const missing = during.filter((s) => !device.acked.has(s));
          for (const s of missing) await device.sendDetections(batch(s));
          return missing.length === 0 ? true : undefined;
        },
        30_000,
        'all acks',
      );

      const sql = new Client({ connectionString: db.url });
      await sql.connect();
      const rows = await sql.query('SELECT seq::int FROM detections WHERE site = $1 ORDER BY seq', [site]);
      await withTimeout(sql.end(), 5000);
      expect(rows.rows.map((r: { seq: number }) => r.seq)).toEqual([1, ...during]);
      const inv = (await getJson<{ categories: Array<{ category: string; locations: number }> }>(`${sut.hub.httpUrl}/inventory?site=${site}`)).body;
      expect(Object.fromEntries(inv.categories.map((c) => [c.category, c.locations]))).toEqual({ juice: 6, milk: 7 });
    });
  });
}
