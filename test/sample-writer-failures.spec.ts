import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { metricSum, withTimeout } from '@shelfsight/common';
import { SampleWriter } from '@shelfsight/hub';
import type { DatabaseKind } from './support/databases';
import { randomVector, registerTestBackbone, sampleMessage } from './support/samples';
import { hasExternalPostgres } from './support/services';
import { hubFetch, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

const DIM = 16;
const BACKBONE = 'test-backbone';

/**
 * A sample the database refuses (forced here by a CHECK constraint in the suite's own
 * database) costs only itself: the writer retries its batch sample by sample, stores the
 * others, and counts the one it lost as store_failed.
 */
for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`${SampleWriter.name}: a refused sample (${variant.db})`, () => {
    let sut: TestHub;
    let sql: Client;
    const site = `site-${randomBytes(3).toString('hex')}`;
    const storeFailed = async () =>
      metricSum(await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text(), 'shelfsight_samples_rejected_total', { reason: 'store_failed' });

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes');
      await registerTestBackbone(sut.hub.databaseUrl, BACKBONE, DIM);
      sql = new Client({ connectionString: sut.hub.databaseUrl });
      await sql.connect();
      await sql.query(`ALTER TABLE samples ADD CONSTRAINT test_no_poison CHECK (frame_id NOT LIKE 'poison%')`);
    });

    afterAll(async () => {
      await withTimeout(sql?.end() ?? Promise.resolve(), 5000);
      await sut?.stop();
    });

    it('drops only the refused sample of a batch and counts it', async () => {
      const sutWriter = sut.hub.app.get(SampleWriter);
      const deviceId = `dev-${randomBytes(3).toString('hex')}`;
      const before = await storeFailed();
      const frames = ['first', 'poison-1', 'good-1', 'good-2', 'good-3'];
      const samples = await Promise.all(frames.map((frameId, i) => sampleMessage(deviceId, { site, frameId: `${frameId}-${deviceId}`, embedding: randomVector(DIM, i + 1) })));
      // Offered back to back: the first starts the writer's loop alone, the other four make one batch with the bad one in it.
      for (const sample of samples) expect(sutWriter.offer({ kind: 'sample', sample, thumbnail: Buffer.from(sample.thumbnail.data, 'base64') })).toBe(true);
      await sutWriter.idle();

      const stored = await sql.query<{ frame_id: string }>('SELECT frame_id FROM samples WHERE device_id = $1 ORDER BY frame_id', [deviceId]);
      expect(stored.rows.map((r) => r.frame_id.replace(`-${deviceId}`, ''))).toEqual(['first', 'good-1', 'good-2', 'good-3']);
      expect((await storeFailed()) - before).toBe(1);
    });
  });
}
