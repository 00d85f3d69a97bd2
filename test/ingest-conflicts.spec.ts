import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { withTimeout } from '@shelfsight/common';
import { metricSum } from '@shelfsight/cli';
import { IngestRepository } from '@shelfsight/hub';
import type { DatabaseKind } from './support/databases';
import { detection, FakeDevice } from './support/fake-device';
import { hasExternalPostgres } from './support/services';
import { eventually, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

/**
 * A device that reuses a sequence number (same device, epoch and seq, another frame) would
 * otherwise be dropped silently by the hub's exactly-once insert: it is counted
 * (shelfsight_detections_seq_conflicts_total), the stored detection stays as it was, and
 * the batch is still acknowledged (the device cannot do better by resending it).
 */
for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`sequence-number conflicts (${variant.db})`, () => {
    let sut: TestHub;
    let sql: Client;
    const site = `site-${randomBytes(3).toString('hex')}`;
    const conflicts = async () => metricSum(await (await fetch(`${sut.hub.httpUrl}/metrics`)).text(), 'shelfsight_detections_seq_conflicts_total');
    const acksOf = (device: FakeDevice, seq: number) => device.acks.filter((a) => a.seqs.includes(seq)).length;
    const rowsOf = async (deviceId: string) =>
      (await sql.query('SELECT seq::int, frame_id, category FROM detections WHERE device_id = $1 ORDER BY seq', [deviceId])).rows as Array<{
        seq: number;
        frame_id: string;
        category: string;
      }>;

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes');
      sql = new Client({ connectionString: sut.hub.databaseUrl });
      await sql.connect();
    });

    afterAll(async () => {
      await withTimeout(sql?.end() ?? Promise.resolve(), 5000);
      await sut?.stop();
    });

    it('counts seq 5 sent again with another frame, keeps the stored row and acks both', async () => {
      const device = await FakeDevice.connect(sut.hub.mqttUrl, `conflict-${randomBytes(3).toString('hex')}`);
      try {
        const before = await conflicts();
        await device.sendDetections([detection(5, { site, frameId: 'frame-A', category: 'milk' })]);
        await eventually(async () => (acksOf(device, 5) === 1 ? true : undefined), 15000, 'ack of frame A');
        expect(await conflicts()).toBe(before);

        await device.sendDetections([detection(5, { site, frameId: 'frame-B', category: 'bread' })]);
        await eventually(async () => (acksOf(device, 5) === 2 ? true : undefined), 15000, 'ack of frame B');
        expect(await conflicts()).toBe(before + 1);
        expect(await rowsOf(device.id)).toEqual([{ seq: 5, frame_id: 'frame-A', category: 'milk' }]);

        // A plain redelivery (same frame) is a duplicate, not a conflict.
        await device.sendDetections([detection(5, { site, frameId: 'frame-A', category: 'milk' })]);
        await eventually(async () => (acksOf(device, 5) === 3 ? true : undefined), 15000, 'ack of the redelivery');
        expect(await conflicts()).toBe(before + 1);
      } finally {
        await device.close();
      }
    });

    it('counts a conflict between two messages that may be committed in one transaction', async () => {
      const device = await FakeDevice.connect(sut.hub.mqttUrl, `conflict-${randomBytes(3).toString('hex')}`);
      try {
        const before = await conflicts();
        // Published back to back: the writer may put both into one statement, or not; either way one is kept and one counted.
        await Promise.all([
          device.sendDetections([detection(7, { site, frameId: 'frame-C' }), detection(8, { site, frameId: 'frame-D' })]),
          device.sendDetections([detection(7, { site, frameId: 'frame-E' })]),
        ]);
        await eventually(async () => (acksOf(device, 7) === 2 ? true : undefined), 15000, 'both acks');
        expect(await conflicts()).toBe(before + 1);
        const rows = await rowsOf(device.id);
        expect(rows.map((r) => r.seq)).toEqual([7, 8]);
        expect(['frame-C', 'frame-E']).toContain(rows[0]!.frame_id);
      } finally {
        await device.close();
      }
    });

    it('finds the conflict inside one transaction, whichever message comes first', async () => {
      const deviceId = `conflict-${randomBytes(3).toString('hex')}`;
      const repository = sut.hub.app.get(IngestRepository);
      const result = await repository.commit(
        [
          { deviceId, epoch: 'e1', detections: [detection(3, { site, frameId: 'frame-F' })] },
          { deviceId, epoch: 'e1', detections: [detection(3, { site, frameId: 'frame-G' }), detection(4, { site, frameId: 'frame-H' })] },
        ],
        0.5,
      );
      expect(result).toMatchObject({ stored: 2, seqConflicts: 1 });
      expect(result.conflictExamples).toHaveLength(1);
      expect(result.conflictExamples[0]).toMatch(new RegExp(`^${deviceId} e1/3 \\(stored frame frame-[FG], sent frame frame-[FG]\\)$`));
      expect((await rowsOf(deviceId)).map((r) => r.seq)).toEqual([3, 4]);
    });
  });
}
