import { withTimeout } from '@shelfsight/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort, spawnShelf, waitForHttp, type ShelfProcess } from '../apps/cli/src/bench/processes';
import { createScratchDatabase, type ScratchDatabase } from '../apps/cli/src/bench/scratch-database';
import type { BrokerKind } from './support/test-hub';
import { eventually, getJson, hubFetch, startTestHub, TEST_ADMIN_KEY, type TestHub } from './support/test-hub';
import type { DatabaseKind } from './support/databases';
import { detection, FakeDevice } from './support/fake-device';
import { EXTERNAL_MQTT_URL, EXTERNAL_POSTGRES_URL, hasExternalMqtt, hasExternalPostgres } from './support/services';

interface InventoryBody {
  totalLocations: number;
  newestObservation: string | null;
  categories: Array<{ category: string; locations: number }>;
}

const variants: Array<{ db: DatabaseKind; broker: BrokerKind; available: () => boolean }> = [
  { db: 'pglite', broker: 'aedes', available: () => true },
  { db: 'postgres', broker: 'aedes', available: hasExternalPostgres },
  { db: 'postgres', broker: 'mosquitto', available: () => hasExternalPostgres() && hasExternalMqtt() },
];

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`hub ingest (${variant.db} + ${variant.broker})`, () => {
    let sut: TestHub;
    let device: FakeDevice;
    let sql: Client;
    const site = `site-${randomBytes(3).toString('hex')}`;

    const inventory = async () => (await getJson<InventoryBody>(`${sut.hub.httpUrl}/inventory?site=${site}&includeStale=true`)).body;
    const counts = async () => Object.fromEntries((await inventory()).categories.map((c) => [c.category, c.locations]));
    const storedRows = async (deviceId: string) =>
      Number((await sql.query('SELECT count(*) FROM detections WHERE device_id = $1', [deviceId])).rows[0].count);

    beforeAll(async () => {
      sut = await startTestHub(variant.db, variant.broker);
      sql = new Client({ connectionString: sut.hub.databaseUrl });
      await sql.connect();
      device = await FakeDevice.connect(sut.hub.mqttUrl, `dev-${randomBytes(3).toString('hex')}`);
    });

    afterAll(async () => {
      await device?.close();
      await withTimeout(sql?.end() ?? Promise.resolve(), 5000);
      await sut?.stop();
    });

    it('stores a batch, updates inventory and only then acknowledges its seqs', async () => {
      await device.sendDetections([
        detection(1, { site, location: 'A-01-1-A', category: 'milk' }),
        detection(2, { site, location: 'A-01-1-B', category: 'milk' }),
        detection(3, { site, location: 'B-02-1-A', category: 'juice' }),
      ]);
      await device.waitForAcks([1, 2, 3]);
      expect(await storedRows(device.id)).toBe(3);
      expect(await counts()).toEqual({ juice: 1, milk: 2 });
      const inv = await inventory();
      expect(inv.totalLocations).toBe(3);
      expect(inv.newestObservation).toBe(detection(3).capturedAt);
    });

    it('ignores a redelivered batch and a repeated sequence number, and acks them again', async () => {
      const batch = [detection(10, { site, location: 'C-01-1-A', category: 'apples' })];
      await device.sendDetections(batch);
      await device.waitForAcks([10]);
      device.acked.clear();
      await device.sendDetections(batch);
      // Same seq, different content: still the same detection as far as the hub is concerned.
      await device.sendDetections([detection(10, { site, location: 'C-01-1-A', category: 'bananas', frameId: 'other-frame' })]);
      await device.waitForAcks([10]);
      expect(await storedRows(device.id)).toBe(4);
      expect(await counts()).toEqual({ apples: 1, juice: 1, milk: 2 });
    });

    it('ignores a frame classified twice under a new seq (same frame id)', async () => {
      await device.sendDetections([detection(20, { site, location: 'C-01-1-B', category: 'apples', frameId: 'frame-x' })]);
      await device.sendDetections([detection(21, { site, location: 'C-01-1-B', category: 'apples', frameId: 'frame-x' })]);
      await device.waitForAcks([20, 21]);
      expect(await storedRows(device.id)).toBe(5);
      expect(await counts()).toEqual({ apples: 2, juice: 1, milk: 2 });
    });

    it('never lets a late frame overwrite a newer state of its location', async () => {
      const newer = detection(31, { site, location: 'D-01-1-A', category: 'milk', capturedAt: '2026-11-02T10:00:00.000Z' });
      const older = detection(30, { site, location: 'D-01-1-A', category: 'juice', capturedAt: '2026-11-02T09:00:00.000Z' });
      await device.sendDetections([newer]);
      await device.waitForAcks([31]);
      await device.sendDetections([older]);
      await device.waitForAcks([30]);
      expect(await counts()).toEqual({ apples: 2, juice: 1, milk: 3 });
      const state = await sql.query('SELECT category FROM location_state WHERE site = $1 AND location = $2', [site, 'D-01-1-A']);
      expect(state.rows).toEqual([{ category: 'milk' }]);
    });

    it('stores low-confidence detections without moving counts', async () => {
      await device.sendDetections([
        detection(40, { site, location: 'D-01-1-A', category: 'juice', confidence: 0.2, capturedAt: '2026-11-03T10:00:00.000Z' }),
      ]);
      await device.waitForAcks([40]);
      expect(await storedRows(device.id)).toBe(8);
      expect(await counts()).toEqual({ apples: 2, juice: 1, milk: 3 });
    });

    it('rejects and counts malformed payloads while the stream goes on', async () => {
      await device.sendRaw('detections', 'this is not json');
      await device.sendRaw('detections', JSON.stringify({ v: 1, deviceId: device.id, epoch: device.epoch, sentAt: 'yesterday', detections: [] }));
      await device.sendRaw(
        'detections',
        JSON.stringify({ v: 1, deviceId: 'someone-else', epoch: device.epoch, sentAt: new Date().toISOString(), detections: [detection(50, { site })] }),
      );
      await device.sendDetections([detection(51, { site, location: 'E-01-1-A', category: 'juice' })]);
      await device.waitForAcks([51]);
      expect(device.acked.has(50)).toBe(false);
      const metrics = await eventually(async () => {
        const text = await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text();
        return text.includes('reason="device_mismatch"') ? text : undefined;
      });
      expect(metrics).toMatch(/shelfsight_payloads_rejected_total\{channel="detections",reason="invalid_json"\} 1/);
      expect(metrics).toMatch(/shelfsight_payloads_rejected_total\{channel="detections",reason="schema"\} 1/);
      expect(metrics).toMatch(/shelfsight_payloads_rejected_total\{channel="detections",reason="device_mismatch"\} 1/);
      expect(await counts()).toEqual({ apples: 2, juice: 2, milk: 3 });
    });

    it('stores the detections of a device whose storage was wiped (new epoch, seqs from 1 again)', async () => {
      const wipedSite = `${site}-wiped`;
      const dev = await FakeDevice.connect(sut.hub.mqttUrl, `${device.id}-w`);
      const at = (h: number) => `2026-11-04T${String(h).padStart(2, '0')}:00:00.000Z`;
      await dev.sendDetections([1, 2].map((seq) => detection(seq, { site: wipedSite, location: `W-01-1-${'AB'[seq - 1]}`, category: 'milk', capturedAt: at(seq) })));
      await dev.waitForAcks([1, 2]);

      dev.startEpoch('epoch-2');
      const after = [1, 2].map((seq) => detection(seq, { site: wipedSite, location: `W-01-1-${'AB'[seq - 1]}`, category: 'juice', capturedAt: at(seq + 10) }));
      await dev.sendDetections(after);
      await dev.waitForAcks([1, 2]);
      // Redelivery within the new epoch is still a no-op.
      await dev.sendDetections(after);
      await eventually(async () => (dev.acks.filter((a) => a.epoch === 'epoch-2').length >= 2 ? true : undefined));

      expect(await storedRows(dev.id)).toBe(4);
      const rows = await sql.query('SELECT epoch, seq::int AS seq, category FROM detections WHERE device_id = $1 ORDER BY epoch, seq', [dev.id]);
      expect(rows.rows).toEqual([
        { epoch: 'epoch-1', seq: 1, category: 'milk' },
        { epoch: 'epoch-1', seq: 2, category: 'milk' },
        { epoch: 'epoch-2', seq: 1, category: 'juice' },
        { epoch: 'epoch-2', seq: 2, category: 'juice' },
      ]);
      const inv = (await getJson<InventoryBody>(`${sut.hub.httpUrl}/inventory?site=${wipedSite}&includeStale=true`)).body;
      expect(Object.fromEntries(inv.categories.map((c) => [c.category, c.locations]))).toEqual({ juice: 2 });
      await dev.close();
    });

    it('tracks devices through birth, heartbeat and death', async () => {
      const birth = {
        v: 1,
        deviceId: device.id,
        kind: 'robot',
        site,
        agentVersion: '0.1.0',
        backboneId: 'bb',
        modelVersion: 'm1',
        startedAt: new Date().toISOString(),
        epoch: 'epoch-1',
      };
      await device.sendRaw('birth', JSON.stringify(birth));
      type Dev = { id: string; online: boolean; kind: string; lastSeenAt: string | null; epoch: string | null; epochChangedAt: string | null };
      const online = await eventually(async () => {
        const list = (await getJson<Dev[]>(`${sut.hub.httpUrl}/devices`)).body;
        return list.find((x) => x.id === device.id && x.online && x.kind === 'robot');
      });
      expect(online.lastSeenAt).not.toBeNull();
      expect(online).toMatchObject({ epoch: 'epoch-1', epochChangedAt: null });

      // Restarted on wiped storage: a new epoch, reported to operators.
      await device.sendRaw('birth', JSON.stringify({ ...birth, epoch: 'epoch-2' }));
      const reset = await eventually(async () => {
        const list = (await getJson<Dev[]>(`${sut.hub.httpUrl}/devices`)).body;
        return list.find((x) => x.id === device.id && x.epoch === 'epoch-2');
      });
      expect(reset.epochChangedAt).not.toBeNull();
      expect(await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text()).toMatch(/^shelfsight_device_epoch_changes_total 1$/m);
      await device.sendRaw('death', JSON.stringify({ v: 1, deviceId: device.id, reason: 'shutdown' }));
      await eventually(async () => {
        const list = (await getJson<Dev[]>(`${sut.hub.httpUrl}/devices`)).body;
        return list.find((x) => x.id === device.id && !x.online);
      });
    });

    it('keeps state and history consistent when several devices race on the same new locations', async () => {
      const raceSite = `${site}-race`;
      const devices = await Promise.all([1, 2, 3, 4].map((i) => FakeDevice.connect(sut.hub.mqttUrl, `${device.id}-r${i}`)));
      const categories = ['milk', 'juice', 'apples'];
      let n = 0;
      await Promise.all(
        devices.map(async (dev, di) => {
          for (let b = 0; b < 10; b++) {
            const batch = Array.from({ length: 8 }, (_, i) => {
              n += 1;
              const seq = b * 8 + i + 1;
              return detection(seq, {
                site: raceSite,
                location: `R-01-1-${'ABCDEF'[(seq + di) % 6]}`,
                category: categories[(seq * 7 + di) % 3]!,
                capturedAt: new Date(Date.now() - 600_000 + ((seq * 37 + di * 11) % 500) * 1000).toISOString(),
              });
            });
            await dev.sendDetections(batch);
          }
        }),
      );
      for (const dev of devices) await dev.waitForAcks(Array.from({ length: 80 }, (_, i) => i + 1));
      expect(n).toBe(320);
      // The state of each location is the newest detection by capture time (ties by device, seq)...
      const mismatches = await sql.query(
        `WITH exp AS (SELECT DISTINCT ON (location) location, device_id, seq FROM detections WHERE site = $1
                      ORDER BY location, captured_at DESC, device_id DESC, seq DESC)
         SELECT count(*)::int AS n FROM exp FULL JOIN (SELECT * FROM location_state WHERE site = $1) s USING (location)
         WHERE s.seq IS DISTINCT FROM exp.seq OR s.device_id IS DISTINCT FROM exp.device_id`,
        [raceSite],
      );
      expect(mismatches.rows[0].n).toBe(0);
      // ...and the history's running sums end at exactly the current counts.
      const history = await sql.query(
        `SELECT category, sum(delta)::int AS n FROM inventory_deltas WHERE site = $1 GROUP BY category HAVING sum(delta) <> 0 ORDER BY category`,
        [raceSite],
      );
      const state = await sql.query(`SELECT category, count(*)::int AS n FROM location_state WHERE site = $1 GROUP BY category ORDER BY category`, [
        raceSite,
      ]);
      expect(history.rows).toEqual(state.rows);
      expect(state.rows.reduce((t: number, r: { n: number }) => t + r.n, 0)).toBe(6);
      for (const dev of devices) await dev.close();
    });

    it('answers 400 naming the parameter for a bad query', async () => {
      const res = await getJson<{ message: string[] }>(`${sut.hub.httpUrl}/inventory?site=no%20spaces`);
      expect(res.status).toBe(400);
      expect(res.body.message.join(' ')).toMatch(/^site:/);
    });
  });
}

/**
 * Two hub processes, one PostgreSQL, the machine's Mosquitto: an MQTT 5 shared
 * subscription splits the device traffic between them, and every detection is counted
 * exactly once. (In this file so it never runs beside the other Mosquitto suite.)
 */
const replicas = hasExternalPostgres() && hasExternalMqtt() ? describe : describe.skip;
replicas('two hub replicas on a shared subscription (postgres + mosquitto)', () => {
  let scratch: ScratchDatabase;
  const hubs: ShelfProcess[] = [];
  const httpPorts: number[] = [];
  const devices: FakeDevice[] = [];
  const site = `replicas-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    scratch = await createScratchDatabase(EXTERNAL_POSTGRES_URL, 'shelfsight_test');
    const group = `replicas-${randomBytes(3).toString('hex')}`;
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      httpPorts.push(port);
      hubs.push(
        spawnShelf(['hub'], {
          DATABASE_URL: scratch.url,
          MQTT_URL: EXTERNAL_MQTT_URL,
          MQTT_SHARE_GROUP: group,
          HTTP_PORT: String(port),
          HTTP_HOST: '127.0.0.1',
          DATA_DIR: mkdtempSync(join(tmpdir(), 'shelfsight-replica-')),
          HUB_API_KEY: TEST_ADMIN_KEY,
        }),
      );
    }
    for (const port of httpPorts) await waitForHttp(`http://127.0.0.1:${port}/health`, 90_000);
    for (let i = 0; i < 4; i++) devices.push(await FakeDevice.connect(EXTERNAL_MQTT_URL, `${site}-dev-${i}`));
  }, 120_000);

  afterAll(async () => {
    for (const d of devices) await d.close();
    for (const h of hubs) await h.stop();
    await scratch?.drop();
  });

  it('splits the traffic and counts every detection exactly once', async () => {
    const perDevice = 25;
    await Promise.all(
      devices.map(async (dev, di) => {
        for (let b = 1; b <= perDevice; b++) {
          await dev.sendDetections([
            detection(b, { site, location: `A-0${di}-1-${'ABCDE'[b % 5]}`, category: b % 2 ? 'milk' : 'juice' }),
          ]);
        }
      }),
    );
    for (const dev of devices) await dev.waitForAcks(Array.from({ length: perDevice }, (_, i) => i + 1), 30_000);

    const received = await Promise.all(
      httpPorts.map(async (port) => {
        const text = await (await hubFetch(`http://127.0.0.1:${port}/metrics`)).text();
        return Number(/shelfsight_detections_received_total (\d+)/.exec(text)?.[1] ?? 0);
      }),
    );
    // Each batch went to one replica only: together they saw each detection once, and both worked.
    expect(received[0]! + received[1]!).toBe(devices.length * perDevice);
    expect(received.every((n) => n > 0)).toBe(true);

    const sql = new Client({ connectionString: scratch.url });
    await sql.connect();
    const stored = await sql.query('SELECT count(*)::int AS n, count(DISTINCT (device_id, seq))::int AS d FROM detections WHERE site = $1', [site]);
    await withTimeout(sql.end(), 5000);
    expect(stored.rows[0]).toEqual({ n: 100, d: 100 });
    const inv = (await getJson<InventoryBody>(`http://127.0.0.1:${httpPorts[0]}/inventory?site=${site}`)).body;
    // 4 devices x 5 bins; the last write per bin: seqs 21..25 -> bins B,C,D,E,A with 21,23,25 milk and 22,24 juice.
    expect(Object.fromEntries(inv.categories.map((c) => [c.category, c.locations]))).toEqual({ juice: 8, milk: 12 });
  });
});
