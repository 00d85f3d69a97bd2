import { withTimeout } from '@shelfsight/common';
import { DeathSchema, deviceTopic, encodePayload, SCHEMA_VERSION } from '@shelfsight/contracts';
import { checkInventoryConsistency } from '@shelfsight/db';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { Client } from 'pg';
import { createScratchDatabase, freePort, spawnShelf, waitForHttp, type ScratchDatabase, type ShelfProcess } from '@shelfsight/cli';
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
      await device.waitForAckCount(10, 1);
      await device.sendDetections(batch);
      // Same seq, different content: still the same detection as far as the hub is concerned.
      await device.sendDetections([detection(10, { site, location: 'C-01-1-A', category: 'bananas', frameId: 'other-frame' })]);
      // One ack per message: the third means the conflicting one was processed too.
      await device.waitForAckCount(10, 3);
      expect(await storedRows(device.id)).toBe(4);
      const stored = await sql.query('SELECT category FROM detections WHERE device_id = $1 AND seq = 10', [device.id]);
      expect(stored.rows).toEqual([{ category: 'apples' }]);
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
      // The history, row by row: per hour, per zone, per category, every delta as stored.
      const history = async () =>
        (await sql.query('SELECT zone, category, hour, delta FROM inventory_deltas WHERE site = $1 ORDER BY hour, zone, category', [site])).rows;
      await device.sendDetections([newer]);
      await device.waitForAcks([31]);
      const before = await history();
      expect(before).toContainEqual({ zone: 'D', category: 'milk', hour: new Date('2026-11-02T10:00:00.000Z'), delta: 1 });
      await device.sendDetections([older]);
      await device.waitForAcks([30]);
      expect(await counts()).toEqual({ apples: 2, juice: 1, milk: 3 });
      const state = await sql.query('SELECT category FROM location_state WHERE site = $1 AND location = $2', [site, 'D-01-1-A']);
      expect(state.rows).toEqual([{ category: 'milk' }]);
      // The late frame is stored but changes no state, so it writes no history, not even deltas that cancel out.
      expect(await history()).toEqual(before);
      expect(await storedRows(device.id)).toBe(7);
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
      type Dev = {
        id: string;
        online: boolean;
        kind: string;
        lastSeenAt: string | null;
        epoch: string | null;
        epochChangedAt: string | null;
        lastHeartbeat: Record<string, unknown> | null;
      };
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

      // A heartbeat is stored as the device's latest vitals, and counts as being seen.
      const heartbeat = {
        v: 1,
        deviceId: device.id,
        sentAt: new Date().toISOString(),
        uptimeS: 42,
        framesPerS: 1.5,
        p95LatencyMs: 33,
        queueDepth: 2,
        outboxDepth: 7,
        outboxBytes: 4096,
        diskFreeBytes: 123_456_789,
      };
      await device.sendRaw('heartbeat', JSON.stringify(heartbeat));
      const beating = await eventually(async () => {
        const list = (await getJson<Dev[]>(`${sut.hub.httpUrl}/devices`)).body;
        return list.find((x) => x.id === device.id && x.lastHeartbeat?.sentAt === heartbeat.sentAt);
      });
      expect(beating.lastHeartbeat).toEqual(heartbeat);
      expect(beating.online).toBe(true);
      expect(Date.parse(beating.lastSeenAt!)).toBeGreaterThanOrEqual(Date.parse(reset.lastSeenAt!));

      await device.sendRaw('death', JSON.stringify({ v: 1, deviceId: device.id, reason: 'shutdown' }));
      const dead = await eventually(async () => {
        const list = (await getJson<Dev[]>(`${sut.hub.httpUrl}/devices`)).body;
        return list.find((x) => x.id === device.id && !x.online);
      });
      // Death keeps what was known of the device.
      expect(dead).toMatchObject({ kind: 'robot', epoch: 'epoch-2', lastHeartbeat: heartbeat });
    });

    it('marks an agent killed without a clean disconnect offline, through its last will', async () => {
      const id = `${device.id}-will`;
      // Like the agent's link: death "lost" as the MQTT last will, birth once connected.
      const agent = await connectAsync(sut.hub.mqttUrl, {
        clientId: id,
        reconnectPeriod: 0,
        will: { topic: deviceTopic(id, 'death'), payload: encodePayload(DeathSchema, { v: SCHEMA_VERSION, deviceId: id, reason: 'lost' }), qos: 1, retain: false },
      });
      const birth = { v: 1, deviceId: id, kind: 'robot', site, agentVersion: '0.1.0', backboneId: 'bb', modelVersion: 'm1', startedAt: new Date().toISOString(), epoch: 'e-1' };
      await agent.publishAsync(deviceTopic(id, 'birth'), JSON.stringify(birth), { qos: 1 });
      const byId = async (want: boolean) => {
        const list = (await getJson<Array<{ id: string; online: boolean }>>(`${sut.hub.httpUrl}/devices`)).body;
        return list.find((x) => x.id === id && x.online === want);
      };
      await eventually(() => byId(true), 15000, 'the agent online');
      // Killed: the TCP connection drops with no DISCONNECT, so the broker publishes the will.
      agent.stream.destroy();
      await eventually(() => byId(false), 15000, 'the agent offline through its last will');
      agent.end(true);
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
      // ...and the history's running sums end at exactly the current counts: the check that
      // bench ingest and the chaos run make, on this site.
      expect(await checkInventoryConsistency(sql, 0.5, { site: raceSite })).toEqual({ stateMismatches: 0, historyMismatches: 0 });
      const state = await sql.query(`SELECT count(*)::int AS n FROM location_state WHERE site = $1`, [raceSite]);
      expect(state.rows[0].n).toBe(6);
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
    for (const [i, port] of httpPorts.entries()) {
      const hub = hubs[i]!;
      try {
        await waitForHttp(`http://127.0.0.1:${port}/health`, 180_000, () => (hub.child.exitCode !== null ? `hub ${i} exited: ${hub.stderr().slice(-3000)}` : undefined));
      } catch (err) {
        throw new Error(`${(err as Error).message}\nhub ${i} log tail:\n${hub.stderr().slice(-3000)}\n${hub.stdout().slice(-3000)}`);
      }
    }
    for (let i = 0; i < 4; i++) devices.push(await FakeDevice.connect(EXTERNAL_MQTT_URL, `${site}-dev-${i}`));
  }, 240_000);

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
