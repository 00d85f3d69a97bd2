import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { metricSum, withTimeout } from '@shelfsight/common';
import { checkInventoryConsistency } from '@shelfsight/db';
import type { DatabaseKind } from './support/databases';
import { detection, FakeDevice } from './support/fake-device';
import { hasExternalPostgres } from './support/services';
import { eventually, hubFetch, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

/**
 * A detection PostgreSQL refuses for good (SQLSTATE class 22 or 23) must not block the
 * detections committed with it: the writer splits the group, stores the good rows, keeps
 * the refused one in detection_dead_letters (counted by SQLSTATE) and acknowledges the
 * whole batch. A transient refusal (40001 here) is still retried until it passes. The
 * refusals are forced in each suite's own database: a CHECK constraint and a trigger.
 */
for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`dead-lettered detections (${variant.db})`, () => {
    let sut: TestHub;
    let sql: Client;
    const site = `site-${randomBytes(3).toString('hex')}`;
    const metrics = async () => (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text();
    const storedSeqs = async (deviceId: string) =>
      (await sql.query('SELECT seq::int FROM detections WHERE device_id = $1 ORDER BY seq', [deviceId])).rows.map((r: { seq: number }) => r.seq);
    const lettersOf = async (deviceId: string) =>
      (await sql.query('SELECT seq::int, sqlstate, error, payload FROM detection_dead_letters WHERE device_id = $1 ORDER BY seq', [deviceId])).rows as Array<{
        seq: number;
        sqlstate: string;
        error: string;
        payload: string;
      }>;

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes');
      sql = new Client({ connectionString: sut.hub.databaseUrl });
      await sql.connect();
      await sql.query(`ALTER TABLE detections ADD CONSTRAINT test_no_poison CHECK (category <> 'poison')`);
      await sql.query(`CREATE TABLE test_flaky (on_ boolean)`);
      await sql.query(`CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.category = 'bad-data' THEN RAISE EXCEPTION 'test: bad data' USING ERRCODE = '22023'; END IF;
          IF NEW.category = 'flaky' AND EXISTS (SELECT 1 FROM test_flaky) THEN RAISE EXCEPTION 'test: try again' USING ERRCODE = '40001'; END IF;
          RETURN NEW;
        END $$`);
      await sql.query(`CREATE TRIGGER test_refuse BEFORE INSERT ON detections FOR EACH ROW EXECUTE FUNCTION test_refuse()`);
    });

    afterAll(async () => {
      await withTimeout(sql?.end() ?? Promise.resolve(), 5000);
      await sut?.stop();
    });

    it('stores the good rows, dead-letters the refused ones with their SQLSTATE and payload, and acks the batch', async () => {
      const a = await FakeDevice.connect(sut.hub.mqttUrl, `dl-${randomBytes(3).toString('hex')}`);
      const b = await FakeDevice.connect(sut.hub.mqttUrl, `dl-${randomBytes(3).toString('hex')}`);
      try {
        const before = await metrics();
        const seqs = [1, 2, 3, 4, 5, 6];
        const batchA = seqs.map((seq) =>
          // seq 2 (refused) shares seq 1's location and is newer: the state must stay seq 1's.
          detection(seq, { site, location: `A-01-${seq === 2 ? 1 : seq}-A`, category: seq === 2 ? 'poison' : seq === 5 ? 'bad-data' : 'milk' }),
        );
        // Another device's message, probably committed in the same group: it must not suffer either.
        const batchB = [1, 2].map((seq) => detection(seq, { site, location: `B-01-${seq}-A`, category: 'bread' }));
        await Promise.all([a.sendDetections(batchA), b.sendDetections(batchB)]);
        await a.waitForAcks(seqs);
        await b.waitForAcks([1, 2]);

        expect(await storedSeqs(a.id)).toEqual([1, 3, 4, 6]);
        expect(await storedSeqs(b.id)).toEqual([1, 2]);
        const letters = await lettersOf(a.id);
        expect(letters.map((l) => [l.seq, l.sqlstate])).toEqual([
          [2, '23514'],
          [5, '22023'],
        ]);
        expect(letters[0]!.error).toContain('test_no_poison');
        expect(JSON.parse(letters[0]!.payload)).toEqual(batchA[1]);
        expect(JSON.parse(letters[1]!.payload)).toEqual(batchA[4]);

        const after = await metrics();
        const dead = (text: string, sqlstate: string) => metricSum(text, 'shelfsight_detections_dead_lettered_total', { sqlstate });
        expect(dead(after, '23514') - dead(before, '23514')).toBe(1);
        expect(dead(after, '22023') - dead(before, '22023')).toBe(1);
        // The good rows moved their locations' states as usual.
        const states = await sql.query('SELECT location, seq::int FROM location_state WHERE site = $1 AND device_id = $2 ORDER BY location', [site, a.id]);
        expect(states.rows).toEqual([
          { location: 'A-01-1-A', seq: 1 },
          { location: 'A-01-3-A', seq: 3 },
          { location: 'A-01-4-A', seq: 4 },
          { location: 'A-01-6-A', seq: 6 },
        ]);
        expect(await checkInventoryConsistency(sql, 0.5, { site })).toEqual({ stateMismatches: 0, historyMismatches: 0 });

        // A resend (the ack was lost) is acked again and adds no second dead letter.
        await a.sendDetections(batchA);
        await a.waitForAckCount(2, 2);
        expect(await lettersOf(a.id)).toHaveLength(2);
        expect(await storedSeqs(a.id)).toEqual([1, 3, 4, 6]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('keeps retrying a transient refusal (40001) without dead-lettering, and stores the rows once it passes', async () => {
      const device = await FakeDevice.connect(sut.hub.mqttUrl, `dl-${randomBytes(3).toString('hex')}`);
      try {
        await sql.query('INSERT INTO test_flaky VALUES (true)');
        const errorsBefore = metricSum(await metrics(), 'shelfsight_commit_errors_total');
        await device.sendDetections([detection(1, { site, category: 'flaky' }), detection(2, { site, category: 'milk' })]);
        await eventually(async () => (metricSum(await metrics(), 'shelfsight_commit_errors_total') >= errorsBefore + 2 ? true : undefined), 15000, 'retries');
        expect(device.acks).toHaveLength(0);
        expect(await storedSeqs(device.id)).toEqual([]);
        expect(await lettersOf(device.id)).toEqual([]);

        await sql.query('DELETE FROM test_flaky');
        await device.waitForAcks([1, 2]);
        expect(await storedSeqs(device.id)).toEqual([1, 2]);
        expect(await lettersOf(device.id)).toEqual([]);
        expect(await checkInventoryConsistency(sql, 0.5, { site })).toEqual({ stateMismatches: 0, historyMismatches: 0 });
      } finally {
        await sql.query('DELETE FROM test_flaky');
        await device.close();
      }
    });
  });
}
