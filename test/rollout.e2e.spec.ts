import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { decodeTrainingRows, LABELS_FILE, MANIFEST_FILE, packArtifact, TRAINING_ROWS_FILE, WEIGHTS_FILE } from '@shelfsight/contracts';
import { TRAIN_DEFAULTS, trainModel } from '@shelfsight/vision';
import { rolloutAgentArgs } from './browser/rollout-steps';
import { spawnAgent, type AgentProcess } from './support/agent-process';
import { postEvaluationRows } from './support/model-artifacts';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from './support/test-hub';
import { GROCERY_DIR, REFERENCE_BACKBONE, requireShared } from './support/workspace-data';

/**
 * Issue #12's end-to-end test: a hub (device authentication on), two real `shelf agent`
 * processes with the tfjs classifier on the reference backbone classifying real grocery
 * photos with v1, a head trained on grocery photos and registered through `POST /models`;
 * v2 (trained the same way, passing the registry's gate) is rolled out in two stages and
 * afterwards every agent's detections carry v2.
 */
const run = requireShared('the end-to-end rollout test') ? describe : describe.skip;

const LABELS = ['bananas', 'milk'];
const PHOTOS: Record<string, string> = { bananas: 'train/Fruit/Banana', milk: 'train/Packages/Milk' };

const photosOf = (dir: string): string[] =>
  readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => join(dir, f));

interface RolloutJson {
  id: string;
  state: string;
  haltReason: string | null;
  stages: Array<{ index: number; state: string; devices: number }>;
  devices?: Array<{ deviceId: string; stage: number; state: string; reason: string | null; activeVersion: string | null; offeredAt: string | null }>;
}

run('rollout end to end: registry version to real tfjs agents on real grocery photos, in two stages', () => {
  jest.setTimeout(300_000);
  let sut: TestHub;
  let feeder: NodeJS.Timeout | undefined;
  const agents: AgentProcess[] = [];
  const tag = randomBytes(3).toString('hex');
  const site = `rollout-e2e-${tag}`;
  const devices = [1, 2].map((n) => `${site}-robot-${n}`);
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-rollout-e2e-'));
  let photos: Record<string, string[]>;
  let v1: string;
  let v2: string;

  /** A CSV of `count` photos per label from index `from`. */
  const csv = (name: string, from: number, count: number) => {
    const file = join(work, `${name}.csv`);
    writeFileSync(file, 'image,label\n' + LABELS.flatMap((l) => photos[l]!.slice(from, from + count).map((p) => `${p},${l}`)).join('\n') + '\n');
    return file;
  };
  /** Train a head on the reference backbone, with a frozen-to-be testing set (split 2), and register it. */
  const trainAndRegister = async (name: string, trainFrom: number, trainCount: number) => {
    const out = join(work, name);
    const { manifest } = await trainModel({
      ...TRAIN_DEFAULTS,
      backbone: REFERENCE_BACKBONE,
      data: csv(`${name}-train`, trainFrom, trainCount),
      valData: csv(`${name}-val`, 40, 2),
      testData: csv(`${name}-test`, 30, 4),
      trainingRows: true,
      out,
      cacheDir: join(work, 'cache'),
      distortions: {},
      epochs: 10,
      logger: silentLogger,
    });
    // The shared testing photos' rows become the hub's evaluation rows once (an admin's act): uploads are scored on them.
    if (name === 'v1') {
      const rows = decodeTrainingRows(readFileSync(join(out, TRAINING_ROWS_FILE)));
      expect((await postEvaluationRows(sut.hub.httpUrl, manifest.backbone.id, rows, { testingOnly: true, apiKey: sut.apiKey })).status).toBe(201);
    }
    const tar = await packArtifact({
      manifest: readFileSync(join(out, MANIFEST_FILE)),
      weights: readFileSync(join(out, WEIGHTS_FILE)),
      labels: readFileSync(join(out, LABELS_FILE)),
      trainingRows: readFileSync(join(out, TRAINING_ROWS_FILE)),
    });
    const res = await hubFetch(`${sut.hub.httpUrl}/models`, { method: 'POST', body: tar, headers: { 'Content-Type': 'application/gzip' } });
    expect(res.status).toBe(201);
    const registered = (await res.json()) as { version: string; releasable: boolean | null; gateReason: string | null };
    expect(registered.version).toBe(manifest.version);
    if (registered.releasable !== true) throw new Error(`${name} (${registered.version}) is not releasable: ${registered.gateReason}`);
    return { version: manifest.version, dir: out };
  };

  /** Keep giving each agent real grocery photos (copies; frames 20..29 of each label, never trained on). */
  let frameNo = 0;
  const feed = () => {
    for (const [i, id] of devices.entries()) {
      const label = LABELS[(frameNo + i) % LABELS.length]!;
      const photo = photos[label]![20 + (frameNo % 10)]!;
      const name = `f-${String(frameNo).padStart(5, '0')}`;
      const dir = join(work, id, 'frames');
      copyFileSync(photo, join(dir, `${name}.jpg`));
      writeFileSync(join(dir, `${name}.json`), JSON.stringify({ location: `A-0${i + 1}-1-${'ABCD'[frameNo % 4]}`, capturedAt: new Date().toISOString() }));
    }
    frameNo++;
  };

  type DeviceJson = { id: string; online: boolean; modelVersion: string | null };
  const fleet = async () => (await getJson<DeviceJson[]>(`${sut.hub.httpUrl}/devices`)).body.filter((d) => devices.includes(d.id));
  const view = async (id: string) => (await getJson<RolloutJson>(`${sut.hub.httpUrl}/rollouts/${id}`)).body;
  const agentOutput = () => agents.map((a) => a.output().slice(-2000)).join('\n---\n');

  beforeAll(async () => {
    photos = Object.fromEntries(LABELS.map((l) => [l, photosOf(join(GROCERY_DIR, PHOTOS[l]!))]));
    // About rollouts, not the gate: 4 testing photos a category are enough, and no practical margin on so few.
    sut = await startTestHub('pglite', 'aedes', { MQTT_AUTH: 'on', ROLLOUT_TICK_MS: '250', GATE_MIN_EVAL_ROWS: '4', GATE_MAX_CATEGORY_DROP: '1', GATE_MAX_OVERALL_DROP: '1' });

    // v1 on a few photos per class; v2 on more (a superset), the same evaluation set.
    v1 = (await trainAndRegister('v1', 0, 4)).version;
    const v1Dir = join(work, 'v1');
    v2 = (await trainAndRegister('v2', 0, 8)).version;
    expect(v2).not.toBe(v1);

    for (const id of devices) {
      mkdirSync(join(work, id, 'frames'), { recursive: true });
      agents.push(
        spawnAgent({
          'device-id': id,
          site,
          'mqtt-url': sut.hub.mqttUrl,
          ...(await rolloutAgentArgs(sut, id, join(work, id))),
          classifier: 'tfjs',
          model: v1Dir,
          backbone: REFERENCE_BACKBONE,
          'frames-dir': join(work, id, 'frames'),
          'state-dir': join(work, id, 'state'),
          'poll-ms': 100,
          'settle-ms': 0,
          'heartbeat-ms': 500,
        }),
      );
    }
    feed();
    await eventually(
      async () => {
        const list = await fleet();
        return list.length === devices.length && list.every((d) => d.online && d.modelVersion === v1) ? true : undefined;
      },
      120_000,
      'both agents online on v1',
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; devices ${JSON.stringify(await fleet())}; agent output:\n${agentOutput()}`);
    });
    // Their first detections are v1's.
    await eventually(
      async () => {
        const { body } = await getJson<{ items: Array<{ deviceId: string; modelVersion: string }> }>(`${sut.hub.httpUrl}/detections?site=${site}&limit=500`);
        return devices.every((id) => body.items.some((d) => d.deviceId === id && d.modelVersion === v1)) ? true : undefined;
      },
      120_000,
      'v1 detections from both agents',
    );
    feeder = setInterval(feed, 400);
  }, 300_000);

  afterAll(async () => {
    if (feeder) clearInterval(feeder);
    for (const a of agents) await a.kill();
    await sut?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('rolls v2 out 50% then 100%; afterwards every agent detects with v2 and GET /devices shows it', async () => {
    const res = await hubFetch(`${sut.hub.httpUrl}/rollouts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        modelVersion: v2,
        target: { deviceIds: devices },
        stages: [
          { percent: 50, minSoakSeconds: 1, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } },
          { percent: 100, minSoakSeconds: 1, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } },
        ],
        // About delivery, not the shadow gate: v2 learnt from more photos, so on two shadowed frames a changed
        // prediction is expected; the gate is turned off with a reason (as an operator must, audited).
        policy: { shadowFrames: 2, shadowGate: false, overrideReason: 'v2 learnt from more photos: its predictions are meant to change' },
      }),
    });
    const created = (await res.json()) as RolloutJson & { message?: string };
    expect(res.status).toBe(201);
    expect(created.stages.map((s) => [s.state, s.devices])).toEqual([
      ['running', 1],
      ['pending', 1],
    ]);
    const canary = created.devices!.find((d) => d.stage === 0)!.deviceId;
    const rest = created.devices!.find((d) => d.stage === 1)!.deviceId;
    expect(created.devices!.find((d) => d.deviceId === rest)!.offeredAt).toBeNull();

    // Stage 1: the canary activates v2 while the other agent stays on v1; the stage passes.
    const firstPassed = await eventually(
      async () => {
        const v = await view(created.id);
        if (v.state === 'halted' || v.state === 'aborted') throw new Error(`rollout ${v.state}: ${v.haltReason}`);
        return v.stages[0]!.state === 'passed' ? v : undefined;
      },
      120_000,
      'stage 1 passed',
    ).catch((err: Error) => {
      throw new Error(`${err.message}; agent output:\n${agentOutput()}`);
    });
    expect(firstPassed.devices!.find((d) => d.deviceId === canary)).toMatchObject({ state: 'active', activeVersion: v2 });
    // The second stage's device was not offered v2 before the canary passed (it still runs v1 here).
    expect(firstPassed.devices!.find((d) => d.deviceId === rest)!.activeVersion).not.toBe(v2);

    // Stage 2: the rest, then the rollout completes.
    const done = await eventually(
      async () => {
        const v = await view(created.id);
        if (v.state === 'halted' || v.state === 'aborted') throw new Error(`rollout ${v.state}: ${v.haltReason}`);
        return v.state === 'completed' ? v : undefined;
      },
      120_000,
      'rollout completed',
    );
    expect(done.stages.map((s) => s.state)).toEqual(['passed', 'passed']);
    for (const d of done.devices!) expect(d).toMatchObject({ state: 'active', activeVersion: v2 });

    // Detections stored after completion, from every agent, carry v2.
    const completedAt = new Date().toISOString();
    type DetectionPage = { items: Array<{ deviceId: string; modelVersion: string; capturedAt: string }> };
    const after = await eventually(
      async () => {
        const { body } = await getJson<DetectionPage>(`${sut.hub.httpUrl}/detections?site=${site}&limit=1000`);
        const later = body.items.filter((d) => d.capturedAt > completedAt);
        return devices.every((id) => later.some((d) => d.deviceId === id)) ? later : undefined;
      },
      60_000,
      'detections from every agent after completion',
    );
    expect([...new Set(after.map((d) => d.modelVersion))]).toEqual([v2]);

    const list = await fleet();
    expect(list.map((d) => [d.id, d.online, d.modelVersion]).sort()).toEqual(devices.map((id) => [id, true, v2]));
  });
});
