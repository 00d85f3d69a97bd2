import { withTimeout } from '@shelfsight/common';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { allDevicesTopic } from '@shelfsight/contracts';
import { renderShelfPhoto, type DemoCategory } from '@shelfsight/vision';
import { spawnAgent, type AgentProcess } from './support/agent-process';
import type { DatabaseKind } from './support/databases';
import { hasExternalPostgres } from './support/services';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from './support/test-hub';


interface FrameSpec {
  name: string;
  location: string;
  category: DemoCategory;
  capturedAt: string;
}

/** Capture times relative to now (the hub reports locations unseen for a day as stale). */
const BASE = Date.now() - 3 * 3600_000;
const at = (hours: number) => new Date(BASE + hours * 3600_000).toISOString();

// Agent 1 sees the chilled aisle and the fruit aisle at t+1h.
const AGENT1: FrameSpec[] = [
  { name: 'f1', location: 'A-01-1-A', category: 'milk', capturedAt: at(1) },
  { name: 'f2', location: 'A-01-1-B', category: 'juice', capturedAt: at(1) },
  { name: 'f3', location: 'B-01-1-A', category: 'apples', capturedAt: at(1) },
];
// Agent 2 arrives later with an OLDER photo of A-01-1-A (must not win) and a NEWER one of B-01-1-A (must win).
const AGENT2: FrameSpec[] = [
  { name: 'g1', location: 'A-01-1-A', category: 'juice', capturedAt: at(0) },
  { name: 'g2', location: 'B-01-1-A', category: 'bananas', capturedAt: at(2) },
  { name: 'g3', location: 'B-01-1-B', category: 'bananas', capturedAt: at(1.5) },
];

async function writeFrames(dir: string, frames: FrameSpec[], seedBase: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  let i = 0;
  for (const f of frames) {
    writeFileSync(join(dir, `${f.name}.json`), JSON.stringify({ location: f.location, capturedAt: f.capturedAt }));
    writeFileSync(join(dir, `${f.name}.jpg`), await renderShelfPhoto(f.category, seedBase + i++));
  }
}

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`fleet end to end (${variant.db}): hub + two agent processes classifying image files`, () => {
    jest.setTimeout(180_000);
    let sut: TestHub;
    let sniffer: MqttClient;
    const captured: Array<{ topic: string; payload: Buffer }> = [];
    const agents: AgentProcess[] = [];
    const site = `e2e-${randomBytes(3).toString('hex')}`;
    const work = mkdtempSync(join(tmpdir(), 'shelfsight-e2e-'));
    let modelDir: string;

    const agentArgs = (n: number) => ({
      'device-id': `${site}-robot-${n}`,
      site,
      'mqtt-url': sut.hub.mqttUrl,
      'frames-dir': join(work, `agent-${n}`, 'frames'),
      'state-dir': join(work, `agent-${n}`, 'state'),
      model: modelDir,
      'poll-ms': 100,
      'settle-ms': 0,
      'heartbeat-ms': 1000,
    });
    // Read through the hub's API (one database connection for the embedded PGlite).
    type DetectionPage = { items: Array<{ location: string; category: string; capturedAt: string }> };
    const stored = async () => (await getJson<DetectionPage>(`${sut.hub.httpUrl}/detections?site=${site}&limit=1000`)).body.items;
    const storedCount = async () => (await stored()).length;

    beforeAll(async () => {
      modelDir = process.env.SHELFSIGHT_TEST_DEMO_MODEL!; // built by the global setup
      await writeFrames(join(work, 'agent-1', 'frames'), AGENT1, 900_000);
      await writeFrames(join(work, 'agent-2', 'frames'), AGENT2, 910_000);
      sut = await startTestHub(variant.db, 'aedes');
      sniffer = await connectAsync(sut.hub.mqttUrl, { clientId: `sniffer-${site}` });
      sniffer.on('message', (topic, payload) => captured.push({ topic, payload: Buffer.from(payload) }));
      await sniffer.subscribeAsync(allDevicesTopic('detections'), { qos: 1 });
    });

    afterAll(async () => {
      for (const a of agents) await a.kill();
      await withTimeout(sniffer?.endAsync(true) ?? Promise.resolve(), 5000);
      await sut?.stop();
    });

    it('classifies every frame, lets the newest capture win, and ignores duplicates', async () => {
      // Agent 1 first; agent 2's frames then arrive later than newer observations of the same place.
      agents.push(spawnAgent(agentArgs(1)));
      await eventually(async () => ((await storedCount()) === 3 ? true : undefined), 90_000, 'agent 1 detections');
      agents.push(spawnAgent(agentArgs(2)));
      await eventually(async () => ((await storedCount()) === 6 ? true : undefined), 90_000, 'agent 2 detections');

      // The real classifier got every real image file right.
      const rows = (await stored())
        .map((d) => ({ location: d.location, category: d.category, capturedAt: d.capturedAt }))
        .sort((a, b) => a.location.localeCompare(b.location) || a.capturedAt.localeCompare(b.capturedAt));
      const expected = [...AGENT1, ...AGENT2]
        .map((f) => ({ location: f.location, category: f.category, capturedAt: f.capturedAt }))
        .sort((a, b) => a.location.localeCompare(b.location) || a.capturedAt.localeCompare(b.capturedAt));
      expect(rows).toEqual(expected);

      // Redeliver everything the agents ever sent, twice over: nothing changes.
      expect(captured.length).toBeGreaterThan(0);
      for (let round = 0; round < 2; round++) {
        for (const m of captured.slice()) await sniffer.publishAsync(m.topic, m.payload, { qos: 1 });
      }
      // A sentinel batch through the same path proves the redeliveries were processed before we look.
      const sentinel = captured[captured.length - 1]!;
      await sniffer.publishAsync(sentinel.topic, sentinel.payload, { qos: 1 });
      await eventually(async () => {
        const text = await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text();
        const dup = Number(/shelfsight_detections_duplicate_total (\d+)/.exec(text)?.[1] ?? 0);
        return dup >= 6 * 2 ? dup : undefined;
      });
      expect(await storedCount()).toBe(6);

      const inventory = (await getJson<{ totalLocations: number; categories: Array<{ category: string; locations: number }> }>(
        `${sut.hub.httpUrl}/inventory?site=${site}`,
      )).body;
      expect(Object.fromEntries(inventory.categories.map((c) => [c.category, c.locations]))).toEqual({ bananas: 2, juice: 1, milk: 1 });
      expect(inventory.totalLocations).toBe(4);

      type LocationPage = { items: Array<{ code: string; state: { category: string } | null }> };
      const state = (await getJson<LocationPage>(`${sut.hub.httpUrl}/locations?site=${site}`)).body.items.map((l) => ({
        location: l.code,
        category: l.state?.category,
      }));
      expect(state).toEqual([
        { location: 'A-01-1-A', category: 'milk' },
        { location: 'A-01-1-B', category: 'juice' },
        { location: 'B-01-1-A', category: 'bananas' },
        { location: 'B-01-1-B', category: 'bananas' },
      ]);

      // Both devices are known and online.
      const devices = (await getJson<Array<{ id: string; online: boolean }>>(`${sut.hub.httpUrl}/devices`)).body;
      expect(devices.filter((x) => x.id.startsWith(site)).map((x) => [x.id, x.online])).toEqual([
        [`${site}-robot-1`, true],
        [`${site}-robot-2`, true],
      ]);
    });
  });
}
