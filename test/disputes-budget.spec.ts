import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { metricSum, withTimeout } from '@shelfsight/common';
import { DisagreementChecker } from '@shelfsight/hub';
import type { DatabaseKind } from './support/databases';
import { detection, FakeDevice } from './support/fake-device';
import { hasExternalPostgres } from './support/services';
import { eventually, hubFetch, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

/**
 * A disputed detection is marked together with its frame request, in one transaction,
 * and only as many as DISAGREEMENT_FRAMES_PER_MINUTE allows: the others stay unmarked and
 * are marked (and their frames requested) by a later pass once the budget has room.
 */
for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`${DisagreementChecker.name}: frame budget and one transaction (${variant.db})`, () => {
    let sut: TestHub;
    let sql: Client;
    let checker: DisagreementChecker;
    const devices: FakeDevice[] = [];
    const tag = randomBytes(3).toString('hex');
    let clockOffset = 0;
    const device = async (name: string) => {
      const dev = await FakeDevice.connect(sut.hub.mqttUrl, `${name}-${tag}`);
      devices.push(dev);
      return dev;
    };
    /** Detections of `site` marked disputed, and how many frame requests each has. */
    const disputed = async (site: string) =>
      (
        await sql.query<{ device_id: string; requests: number }>(
          `SELECT d.device_id, (SELECT count(*)::int FROM frame_requests f WHERE f.detection_id = d.id AND f.purpose = 'disagreement') AS requests
           FROM detections d WHERE d.site = $1 AND d.disputed_at IS NOT NULL ORDER BY d.device_id`,
          [site],
        )
      ).rows;
    /** Two devices disagreeing on one location 20 s apart: two disputable detections. */
    const disagree = async (site: string, one: FakeDevice, two: FakeDevice) => {
      const t0 = Date.now() - 1800_000;
      await one.sendDetections([detection(1, { site, location: 'C-01-1-A', category: 'milk', capturedAt: new Date(t0).toISOString() })]);
      await one.waitForAcks([1]);
      await two.sendDetections([detection(1, { site, location: 'C-01-1-A', category: 'juice', capturedAt: new Date(t0 + 20_000).toISOString() })]);
      await two.waitForAcks([1]);
      await checker.idle();
    };

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes', { DISAGREEMENT_WINDOW_S: '60', DISAGREEMENT_FRAMES_PER_MINUTE: '1' });
      sql = new Client({ connectionString: sut.hub.databaseUrl });
      await sql.connect();
      checker = sut.hub.app.get(DisagreementChecker);
      checker.now = () => Date.now() + clockOffset;
    });

    afterAll(async () => {
      for (const dev of devices) await dev.close();
      await withTimeout(sql?.end() ?? Promise.resolve(), 5000);
      await sut?.stop();
    });

    it('marks only what the budget can request; the rest is marked by a later pass', async () => {
      const site = `budget-${tag}`;
      const one = await device('b1');
      const two = await device('b2');
      const deferredBefore = metricSum(await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text(), 'shelfsight_disagreement_deferred_total');
      await disagree(site, one, two);

      const first = await disputed(site);
      expect(first).toHaveLength(1);
      expect(first[0]!.requests).toBe(1);
      expect(metricSum(await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text(), 'shelfsight_disagreement_deferred_total')).toBe(deferredBefore + 1);
      await eventually(async () => (one.frameRequests.length + two.frameRequests.length === 1 ? true : undefined), 10_000, 'one frame request');

      // A minute later the budget has room again: the deferred detection is marked and its frame requested.
      clockOffset += 61_000;
      checker.retryDeferred();
      await checker.idle();
      const second = await disputed(site);
      expect(second.map((r) => r.device_id)).toEqual([one.id, two.id].sort());
      expect(second.every((r) => r.requests === 1)).toBe(true);
      await eventually(async () => (one.frameRequests.length === 1 && two.frameRequests.length === 1 ? true : undefined), 10_000, 'a frame request each');
    });

    it('marks nothing when the frame requests cannot be recorded, so the dispute stays eligible', async () => {
      const site = `atomic-${tag}`;
      const one = await device('a1');
      const two = await device('a2');
      clockOffset += 120_000;
      await sql.query(`ALTER TABLE frame_requests ADD CONSTRAINT test_no_disagreement CHECK (purpose <> 'disagreement') NOT VALID`);
      try {
        await disagree(site, one, two);
        expect(await disputed(site)).toEqual([]);
      } finally {
        await sql.query('ALTER TABLE frame_requests DROP CONSTRAINT test_no_disagreement');
      }
      checker.enqueue([{ site, location: 'C-01-1-A' }]);
      await checker.idle();
      const marked = await disputed(site);
      expect(marked).toHaveLength(1);
      expect(marked[0]!.requests).toBe(1);
    });
  });
}
