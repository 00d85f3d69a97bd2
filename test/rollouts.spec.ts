import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { silentLogger } from '@shelfsight/common';
import {
  acceptKeyList,
  DEFAULT_ROLLOUT_POLICY,
  deviceTopic,
  ModelCommandSchema,
  ModelOfferSchema,
  parsePayload,
  SCHEMA_VERSION,
  verifySignedManifest,
  parseTrustedKeys,
  type ModelCommand,
  type ModelOffer,
} from '@shelfsight/contracts';
import { agentConfig, StandInClassifier, standInHeadArtifact, startAgent, type AgentHandle } from '@shelfsight/agent';
import { spawnShelf } from '@shelfsight/cli';
import { RolloutsService } from '@shelfsight/hub';
import type { DatabaseKind } from './support/databases';
import { MILK_TO_YOGURT, quarterMilkFrame, seedStandInVersion } from './support/flipped-head';
import { hasExternalPostgres } from './support/services';
import { eventually, getJson, hubFetch, startTestHub, TEST_ADMIN_KEY, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];


interface StageJson {
  index: number;
  state: string;
  startedAt: string | null;
  devices: number;
  counts: Record<string, number>;
  predictedChange?: PredictedChangeJson;
}
interface DeviceJson {
  deviceId: string;
  stage: number;
  state: string;
  reason: string | null;
  activeVersion: string | null;
  previousVersion: string | null;
  offeredAt: string | null;
  statusAt: string | null;
  health?: unknown;
}
interface PredictedChangeJson {
  devices: number;
  frames: number;
  changed: number;
  share: number;
  pairs: Array<{ from: string; to: string; frames: number; share: number; ofFrom: number }>;
}
interface RolloutJson {
  id: string;
  modelVersion: string;
  state: string;
  haltReason: string | null;
  haltAction: string | null;
  policy: Record<string, unknown>;
  predictedChange?: PredictedChangeJson;
  currentStage: number;
  stages: StageJson[];
  counts: Record<string, number>;
  devices?: DeviceJson[];
}

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`fleet rollouts against real agents (${variant.db})`, () => {
    // Real agents, a real broker and database on a shared machine: generous.
    jest.setTimeout(240_000);
    let sut: TestHub;
    let tmp: string;
    let observer: MqttClient;
    let trustedKeysFile: string;
    let feeder: NodeJS.Timeout;
    const agents = new Map<string, AgentHandle>();
    /** Agents a test feeds frames itself (the shared feeder leaves them alone). */
    const selfFed = new Set<string>();
    const passwords = new Map<string, string>();
    /** Every model-offer (parsed; null = cleared) and model-command the hub published, per device. */
    const offers = new Map<string, Array<ModelOffer | null>>();
    const commands = new Map<string, ModelCommand[]>();
    const run = randomBytes(3).toString('hex');
    let n = 0;
    const newId = (what: string) => `${what}-${run}-${++n}`;

    beforeAll(async () => {
      tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'rollouts-'));
      sut = await startTestHub(variant.db, 'aedes', { ROLLOUT_TICK_MS: '100' });
      observer = await connectAsync(sut.hub.mqttUrl, { clientId: `observer-${run}` });
      observer.on('message', (topic, payload) => {
        const [, , , deviceId, channel] = topic.split('/') as [string, string, string, string, string];
        if (channel === 'model-offer') {
          const list = offers.get(deviceId) ?? [];
          const parsed = payload.length === 0 ? null : parsePayload(ModelOfferSchema, payload);
          list.push(parsed && parsed.ok ? parsed.value : null);
          offers.set(deviceId, list);
        } else if (channel === 'model-command') {
          const c = parsePayload(ModelCommandSchema, payload);
          if (c.ok) commands.set(deviceId, [...(commands.get(deviceId) ?? []), c.value]);
        }
      });
      await observer.subscribeAsync(['shelfsight/v1/devices/+/model-offer', 'shelfsight/v1/devices/+/model-command'], { qos: 1 });
      const res = await hubFetch(`${sut.hub.httpUrl}/rollouts/trusted-keys`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      trustedKeysFile = path.join(tmp, 'trusted-keys');
      await fsp.writeFile(trustedKeysFile, await res.text());
      // Shadow runs need frames: every running agent gets one every 50 ms.
      let frame = 0;
      feeder = setInterval(() => {
        for (const [id, a] of agents) {
          if (selfFed.has(id)) continue;
          frame += 1;
          a.offer({ frameId: `f-${frame}`, site: 'site-r', location: `A-01-1-${'ABCD'[frame % 4]}`, capturedAt: new Date().toISOString(), image: pngOf(frame), source: 'test' });
        }
      }, 50);
    });

    afterAll(async () => {
      clearInterval(feeder);
      for (const a of agents.values()) await a.stop();
      await observer?.endAsync();
      await sut?.stop();
      await fsp.rm(tmp, { recursive: true, force: true });
    });

    /** A releasable stand-in head in the registry (artifact in the blob store, gate passed). */
    /** `labels`: the head's output categories (default: the devices' own, so it agrees with their head on every frame). */
    const seedVersion = async (opts: { releasable?: boolean; gateReason?: string; labels?: string[] } = {}) => {
      const version = newId('v');
      const artifact = await seedStandInVersion(sut, version, opts.labels, opts);
      return { version, artifact };
    };

    const provision = async (deviceId: string) => {
      const res = await hubFetch(`${sut.hub.httpUrl}/devices/${deviceId}/credentials`, { method: 'POST' });
      expect(res.status).toBe(201);
      const password = ((await res.json()) as { password: string }).password;
      passwords.set(deviceId, password);
      return password;
    };

    const startDevice = async (deviceId: string, opts: { trustedKeys?: string; loadHead?: NonNullable<Parameters<typeof startAgent>[1]>['loadHead'] } = {}) => {
      const password = passwords.get(deviceId) ?? (await provision(deviceId));
      const config = agentConfig({
        deviceId,
        site: 'site-r',
        mqttUrl: sut.hub.mqttUrl,
        mqttUsername: deviceId,
        mqttPassword: password,
        stateDir: path.join(tmp, deviceId),
        trustedKeys: opts.trustedKeys ?? trustedKeysFile,
        hubHttpUrl: sut.hub.httpUrl,
        shadowFrames: 3,
        heartbeatMs: 200,
      });
      const agent = await startAgent(config, { classifier: new StandInClassifier('stand-in-1'), logger: silentLogger, ...(opts.loadHead ? { loadHead: opts.loadHead } : {}) });
      agents.set(deviceId, agent);
      await eventually(async () => ((await deviceRow(deviceId))?.backboneId === 'stand-in' ? true : undefined), 15_000, `birth of ${deviceId}`);
      return agent;
    };

    const stopDevice = async (deviceId: string) => {
      await agents.get(deviceId)?.stop();
      agents.delete(deviceId);
    };

    const deviceRow = async (deviceId: string) => {
      const { body } = await getJson<Array<{ id: string; backboneId: string | null; modelVersion: string | null }>>(`${sut.hub.httpUrl}/devices`);
      return body.find((x) => x.id === deviceId);
    };

    const post = async (p: string, body?: unknown) => {
      const res = await hubFetch(`${sut.hub.httpUrl}${p}`, {
        method: 'POST',
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
      return { status: res.status, body: (await res.json()) as RolloutJson & { message?: string; rolloutId?: string } };
    };

    const view = async (id: string) => (await getJson<RolloutJson>(`${sut.hub.httpUrl}/rollouts/${id}`)).body;
    const untilState = (id: string, state: string, timeoutMs = 30_000) =>
      eventually(async () => {
        const v = await view(id);
        return v.state === state ? v : undefined;
      }, timeoutMs, `rollout ${id} ${state}`);

    it('promotes stage by stage: the canary activates first, then the rest is offered, and GET /devices shows the new version', async () => {
      const { version } = await seedVersion();
      const ids = [newId('dev'), newId('dev'), newId('dev'), newId('dev')];
      for (const id of ids) await startDevice(id);

      const created = await post('/rollouts', {
        modelVersion: version,
        target: { deviceIds: ids },
        stages: [
          { percent: 25, minSoakSeconds: 0, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } },
          { percent: 100, minSoakSeconds: 0, successThreshold: 1, abort: { maxFailurePercent: 50, minDevices: 2 } },
        ],
      });
      expect(created.status).toBe(201);
      expect(created.body.stages.map((s) => s.devices)).toEqual([1, 3]);
      const canary = created.body.devices!.find((x) => x.stage === 0)!.deviceId;
      // Only the canary was offered at first.
      expect(created.body.devices!.filter((x) => x.offeredAt !== null).map((x) => x.deviceId)).toEqual([canary]);

      // When the canary activated: seen before its health watch (the default, 100 frames) reports and moves its statusAt.
      const canaryActiveAt = await eventually(
        async () => {
          const c = (await view(created.body.id)).devices!.find((x) => x.deviceId === canary)!;
          return c.state === 'active' && c.health === null ? Date.parse(c.statusAt!) : undefined;
        },
        30_000,
        'canary active',
      );
      const done = await untilState(created.body.id, 'completed');
      expect(done.counts.active).toBe(4);
      expect(done.stages.map((s) => s.state)).toEqual(['passed', 'passed']);
      expect(Date.parse(done.stages[1]!.startedAt!)).toBeGreaterThanOrEqual(canaryActiveAt);
      for (const x of done.devices!.filter((x) => x.stage === 1)) expect(Date.parse(x.offeredAt!)).toBeGreaterThanOrEqual(canaryActiveAt);
      for (const x of done.devices!) expect(x).toMatchObject({ state: 'active', activeVersion: version, previousVersion: 'stand-in-1' });
      for (const id of ids) {
        expect((await deviceRow(id))?.modelVersion).toBe(version);
        expect(agents.get(id)!.heads.modelVersion).toBe(version);
      }
      // The offers carried a manifest the devices' trusted keys verify, for this version's artifact.
      const offer = offers.get(canary)!.find((o) => o !== null)!;
      // Devices trust the root; the release keys come from the list it signed (GET /rollouts/key-list, public).
      const roots = parseTrustedKeys(await fsp.readFile(trustedKeysFile, 'utf8'));
      const list = acceptKeyList(await (await fetch(`${sut.hub.httpUrl}/rollouts/key-list`)).json(), undefined, roots, new Date());
      if (!list.ok) throw new Error(list.message);
      const check = verifySignedManifest(offer.signed, list.keys, new Date());
      expect(check.ok).toBe(true);
      expect(offer).toMatchObject({ offerId: created.body.id, artifactPath: `/rollouts/artifacts/${version}` });
      expect(offer.signed.manifest.artifact).toEqual({ sha256: createHash('sha256').update(standInHeadArtifact(version)).digest('hex'), length: standInHeadArtifact(version).length });
      // The default gate judged it: the same head changes nothing, pooled over both stages.
      const seen = await view(created.body.id);
      expect(seen.predictedChange).toMatchObject({ devices: 4, changed: 0, share: 0, pairs: [] });
      expect(seen.predictedChange!.frames).toBeGreaterThanOrEqual(4 * 3);
      for (const id of ids) await stopDevice(id);
    });

    it('halts on the abort criteria: later stages never receive the version', async () => {
      const { version } = await seedVersion();
      // These devices cannot load the head: each refuses the genuine offer (load_failed), a real
      // failure (an offer that fails verification would be counted as an attack instead).
      const ids = [newId('dev'), newId('dev'), newId('dev')];
      for (const id of ids) await startDevice(id, { loadHead: () => Promise.reject(new Error('no room for another head')) });

      const created = await post('/rollouts', {
        modelVersion: version,
        target: { deviceIds: ids },
        stages: [
          { percent: 30, abort: { maxFailurePercent: 0, minDevices: 1 } },
          { percent: 100, abort: { maxFailurePercent: 100, minDevices: 1 } },
        ],
      });
      expect(created.status).toBe(201);
      const halted = await untilState(created.body.id, 'halted');
      expect(halted.haltReason).toMatch(/stage 1 of 2: 1 of 1 reporting devices failed \(1 rejected\)/);
      expect(halted.stages.map((s) => s.state)).toEqual(['halted', 'pending']);
      const canary = halted.devices!.find((x) => x.stage === 0)!;
      expect(canary).toMatchObject({ state: 'rejected', reason: 'load_failed' });
      // A few more ticks: still nothing for the later stage.
      await new Promise((r) => setTimeout(r, 500));
      const later = (await view(created.body.id)).devices!.filter((x) => x.stage === 1);
      expect(later).toHaveLength(2);
      for (const x of later) {
        expect(x).toMatchObject({ state: 'pending', offeredAt: null });
        expect(offers.get(x.deviceId) ?? []).toEqual([]);
      }
      // The canary's retained offer was cleared.
      expect(offers.get(canary.deviceId)?.at(-1)).toBeNull();
      // Its stage-1 devices may not download the artifact either.
      const res = await fetch(`${sut.hub.httpUrl}/rollouts/artifacts/${version}`, { headers: { authorization: basic(later[0]!.deviceId, passwords.get(later[0]!.deviceId)!) } });
      expect(res.status).toBe(403);
      for (const id of ids) await stopDevice(id);
    });

    it('halts on the shadow gate at the canary stage: a head that would flip a category stops there', async () => {
      const { version } = await seedVersion();
      const ids = [newId('dev'), newId('dev'), newId('dev'), newId('dev')];
      for (const id of ids) await provision(id);
      // Devices speaking the contract by hand: they report the shadow run and the gate's refusal.
      const devices = await Promise.all(ids.map((id) => GateDevice.connect(sut.hub.mqttUrl, id)));
      try {
        const created = await post('/rollouts', {
          modelVersion: version,
          target: { deviceIds: ids },
          stages: [
            { percent: 25, minSoakSeconds: 0, abort: { maxFailurePercent: 0, minDevices: 1 } },
            { percent: 100, abort: { maxFailurePercent: 100, minDevices: 1 } },
          ],
          policy: { shadowFrames: 20, shadowGate: { maxCategoryShift: 0.1 } },
        });
        expect(created.status).toBe(201);
        const halted = await untilState(created.body.id, 'halted');
        const canary = halted.devices!.find((x) => x.stage === 0)!;
        expect(canary).toMatchObject({ state: 'rejected', reason: 'shadow_gate' });
        expect(halted.haltReason).toMatch(/1 rejected/);
        // The canary got the policy with its offer (the device's part of it, defaults filled in); the later stages got nothing.
        expect(devices.find((x) => x.id === canary.deviceId)!.offers[0]?.policy).toEqual({
          shadowFrames: 20,
          shadowGate: { minAgreement: DEFAULT_ROLLOUT_POLICY.shadowGate.minAgreement, maxCategoryShift: 0.1 },
          health: DEFAULT_ROLLOUT_POLICY.health,
        });
        for (const x of devices.filter((x) => x.id !== canary.deviceId)) expect(x.offers).toEqual([]);
        await new Promise((r) => setTimeout(r, 300));
        expect((await view(created.body.id)).devices!.find((x) => x.deviceId === canary.deviceId)).toMatchObject({ state: 'rejected', reason: 'shadow_gate' });

        // Abort frees the devices for another rollout.
        expect((await post(`/rollouts/${created.body.id}/abort`)).body.state).toBe('aborted');
      } finally {
        for (const x of devices) await x.close();
      }
    });

    it('halts at the canary stage a head whose shadow run would flip one category, and rolls the canary back (default policy)', async () => {
      const { version } = await seedVersion({ labels: MILK_TO_YOGURT });
      const ids = [newId('dev'), newId('dev'), newId('dev'), newId('dev')];
      // A shelf where a quarter of the frames are milk: every fourth frame the devices' head calls milk.
      for (const id of ids) selfFed.add(id);
      for (const id of ids) await startDevice(id);
      let k = 0;
      const shelf = setInterval(() => {
        k += 1;
        const image = quarterMilkFrame(k);
        for (const id of ids) agents.get(id)?.offer({ frameId: `m-${k}`, site: 'site-r', location: 'A-02-1-A', capturedAt: new Date().toISOString(), image, source: 'test' });
      }, 40);
      try {
        const created = await post('/rollouts', {
          modelVersion: version,
          target: { deviceIds: ids },
          stages: [
            { percent: 50, abort: { maxFailurePercent: 0, minDevices: 1 } },
            { percent: 100, abort: { maxFailurePercent: 0, minDevices: 1 } },
          ],
          // Only the shadow run's length: the gate, the health watch and onHalt are the defaults.
          policy: { shadowFrames: 20 },
        });
        expect(created.status).toBe(201);
        const canaries = created.body.devices!.filter((x) => x.stage === 0).map((x) => x.deviceId);
        expect(canaries).toHaveLength(2);

        const halted = await untilState(created.body.id, 'halted', 60_000);
        expect(halted.haltReason).toMatch(/^stage 1 of 2: predicted inventory change milk → yogurt \d+\.\d% of \d+ frames \(\d+\) is above maxPairChange 10\.0%/);
        expect(halted.haltAction).toBe('rollback');
        expect(halted.stages.map((s) => s.state)).toEqual(['halted', 'pending']);
        // Every canary that activated the head is sent back to the one it ran before; one still shadowing is cancelled.
        const settled = await eventually(
          async () => {
            const v = await view(created.body.id);
            const c = v.devices!.filter((x) => x.stage === 0);
            return c.every((x) => (x.state === 'rolled_back' || x.state === 'rejected') && x.reason === 'operator') ? v : undefined;
          },
          30_000,
          'canaries rolled back',
        );
        expect(settled.devices!.filter((x) => x.stage === 0 && x.state === 'rolled_back').length).toBeGreaterThanOrEqual(1);
        for (const id of canaries) {
          expect(commands.get(id)?.some((c) => c.offerId === created.body.id && (c.command === 'rollback' || c.command === 'cancel'))).toBe(true);
          expect(agents.get(id)!.heads.modelVersion).toBe('stand-in-1');
          expect((await deviceRow(id))?.modelVersion).toBe('stand-in-1');
        }
        const devicesLeftOnHaltedVersion = settled.devices!.filter((x) => x.activeVersion === version).length;
        expect(devicesLeftOnHaltedVersion).toBe(0);
        for (const x of settled.devices!.filter((x) => x.stage === 1)) expect(x).toMatchObject({ state: 'pending', offeredAt: null });

        // The predicted change the rollout screen shows: milk → yogurt, a quarter of the frames, every milk frame.
        const pair = settled.predictedChange!.pairs[0]!;
        expect(pair).toMatchObject({ from: 'milk', to: 'yogurt', ofFrom: 1 });
        expect(pair.share).toBeCloseTo(0.25, 1);
        expect(settled.predictedChange!.pairs).toHaveLength(1);
        expect(settled.stages[0]!.predictedChange!.pairs[0]).toMatchObject({ from: 'milk', to: 'yogurt' });
      } finally {
        clearInterval(shelf);
        for (const id of ids) {
          selfFed.delete(id);
          await stopDevice(id);
        }
      }
    });

    it('gives a rollout created without a policy the default shadow gate, health watch and onHalt rollback; turning them off needs a reason and is audited', async () => {
      const { version } = await seedVersion();
      const ids = [newId('dev'), newId('dev')];
      for (const id of ids) await provision(id); // never connect: the offers stay retained

      const plain = await post('/rollouts', { modelVersion: version, target: { deviceIds: [ids[0]!] }, stages: [{ percent: 100 }] });
      expect(plain.status).toBe(201);
      expect(plain.body.policy).toEqual(DEFAULT_ROLLOUT_POLICY);
      await eventually(async () => (offers.get(ids[0]!)?.at(-1) ? true : undefined), 10_000, `offer to ${ids[0]}`);
      expect(offers.get(ids[0]!)!.at(-1)!.policy).toEqual({
        shadowGate: { minAgreement: DEFAULT_ROLLOUT_POLICY.shadowGate.minAgreement, maxCategoryShift: DEFAULT_ROLLOUT_POLICY.shadowGate.maxCategoryShift },
        health: DEFAULT_ROLLOUT_POLICY.health,
      });

      // Off without a reason: refused.
      const unexplained = await post('/rollouts', { modelVersion: version, target: { deviceIds: [ids[1]!] }, stages: [{ percent: 100 }], policy: { shadowGate: false } });
      expect(unexplained.status).toBe(400);
      expect(JSON.stringify(unexplained.body)).toContain('overrideReason');
      const noFrames = await post('/rollouts', { modelVersion: version, target: { deviceIds: [ids[1]!] }, stages: [{ percent: 100 }], policy: { shadowFrames: 0 } });
      expect(noFrames.status).toBe(400);

      const why = `relabelled dairy on purpose (${run})`;
      const off = await post('/rollouts', { modelVersion: version, target: { deviceIds: [ids[1]!] }, stages: [{ percent: 100 }], policy: { shadowGate: false, health: false, onHalt: 'hold', overrideReason: why } });
      expect(off.status).toBe(201);
      expect(off.body.policy).toEqual({ shadowGate: false, health: false, onHalt: 'hold', overrideReason: why });
      expect((await view(off.body.id)).policy).toMatchObject({ shadowGate: false, overrideReason: why });
      await eventually(async () => (offers.get(ids[1]!)?.at(-1) ? true : undefined), 10_000, `offer to ${ids[1]}`);
      expect(offers.get(ids[1]!)!.at(-1)!.policy).toEqual({});

      const audit = await getJson<{ items: Array<{ method: string; route: string; status: number; reason: string | null }> }>(`${sut.hub.httpUrl}/audit?route=/rollouts&limit=500`);
      const entry = audit.body.items.find((e) => e.method === 'POST' && e.route === '/rollouts' && e.reason?.includes(off.body.id));
      expect(entry).toMatchObject({ status: 201, reason: `rollout ${off.body.id} of ${version}: shadow gate off, health watch off: ${why}` });
      // The rollout with the defaults carries no override in the audit log.
      expect(audit.body.items.some((e) => e.reason?.includes(plain.body.id))).toBe(false);
      for (const r of [plain, off]) expect((await post(`/rollouts/${r.body.id}/abort`)).status).toBe(200);
    });

    it('rolls every device back on the operator\u2019s command and clears the retained offers', async () => {
      const { version } = await seedVersion();
      const ids = [newId('dev'), newId('dev')];
      for (const id of ids) await startDevice(id);
      const created = await post('/rollouts', { modelVersion: version, target: { deviceIds: ids }, stages: [{ percent: 100 }] });
      expect(created.status).toBe(201);
      await untilState(created.body.id, 'completed');

      const rolled = await post(`/rollouts/${created.body.id}/rollback`);
      expect(rolled.status).toBe(200);
      expect(rolled.body.state).toBe('rolled_back');
      for (const id of ids) {
        await eventually(async () => (commands.get(id)?.length ? true : undefined), 10_000, `command to ${id}`);
        expect(commands.get(id)).toEqual([expect.objectContaining({ v: SCHEMA_VERSION, deviceId: id, offerId: created.body.id, command: 'rollback', modelVersion: version })]);
        await eventually(async () => (offers.get(id)?.at(-1) === null ? true : undefined), 10_000, `cleared offer of ${id}`);
      }
      // A device connecting now gets no retained offer.
      const late = await connectAsync(sut.hub.mqttUrl, { clientId: `late-${run}` });
      const seen: Buffer[] = [];
      late.on('message', (_t, p) => seen.push(p));
      await late.subscribeAsync(deviceTopic(ids[0]!, 'model-offer'), { qos: 1 });
      await new Promise((r) => setTimeout(r, 300));
      expect(seen.filter((p) => p.length > 0)).toEqual([]);
      await late.endAsync();
      // A rolled-back rollout cannot be resumed.
      expect((await post(`/rollouts/${created.body.id}/resume`)).status).toBe(409);
      for (const id of ids) await stopDevice(id);
    });

    it('an offline device catches up when it connects (retained offer), and the rollout completes then', async () => {
      const { version } = await seedVersion();
      const online = newId('dev');
      const offline = newId('dev');
      await startDevice(online);
      await startDevice(offline);
      await stopDevice(offline);

      const created = await post('/rollouts', { modelVersion: version, target: { deviceIds: [online, offline] }, stages: [{ percent: 100 }] });
      expect(created.status).toBe(201);
      await eventually(async () => ((await view(created.body.id)).devices!.find((x) => x.deviceId === online)?.state === 'active' ? true : undefined), 30_000, 'online device active');
      expect((await view(created.body.id)).state).toBe('running');

      await startDevice(offline);
      const done = await untilState(created.body.id, 'completed');
      expect(done.devices!.find((x) => x.deviceId === offline)).toMatchObject({ state: 'active', activeVersion: version });
      expect(agents.get(offline)!.heads.modelVersion).toBe(version);
      for (const id of [online, offline]) await stopDevice(id);
    });

    it('refuses a second rollout for a device with 409 naming the rollout in the way, a non-releasable version with 422; pause and resume', async () => {
      const { version } = await seedVersion();
      const { version: other } = await seedVersion();
      const { version: gated } = await seedVersion({ releasable: false, gateReason: 'accuracy on milk dropped by 0.12' });
      const ids = [newId('dev'), newId('dev')];
      for (const id of ids) await provision(id); // never connect: the rollout stays open

      const first = await post('/rollouts', { modelVersion: version, target: { deviceIds: ids }, stages: [{ percent: 100 }] });
      expect(first.status).toBe(201);
      const second = await post('/rollouts', { modelVersion: other, target: { deviceIds: [ids[1]!] }, stages: [{ percent: 100 }] });
      expect(second.status).toBe(409);
      expect(second.body).toMatchObject({ rolloutId: first.body.id });
      expect(second.body.message).toContain(first.body.id);

      const gatedRes = await post('/rollouts', { modelVersion: gated, target: { deviceIds: [ids[0]!] }, stages: [{ percent: 100 }] });
      expect(gatedRes.status).toBe(422);
      expect(gatedRes.body.message).toMatch(/not releasable: accuracy on milk dropped by 0\.12/);
      const bad = await post('/rollouts', { modelVersion: version, target: { deviceIds: ids }, stages: [{ percent: 50 }] });
      expect(bad.status).toBe(400);

      expect((await post(`/rollouts/${first.body.id}/pause`)).body.state).toBe('paused');
      expect((await post(`/rollouts/${first.body.id}/pause`)).status).toBe(409);
      expect((await post(`/rollouts/${first.body.id}/resume`)).body.state).toBe('running');
      expect((await post(`/rollouts/${first.body.id}/abort`)).body.state).toBe('aborted');
      // Aborted: the devices are free again.
      expect((await post('/rollouts', { modelVersion: other, target: { deviceIds: [ids[1]!] }, stages: [{ percent: 100 }] })).status).toBe(201);

      const list = await getJson<RolloutJson[]>(`${sut.hub.httpUrl}/rollouts?state=aborted`);
      expect(list.body.map((r) => r.id)).toContain(first.body.id);
      expect(list.body[0]!.devices).toBeUndefined();

      // Every action is in the audit log, with the rollout id.
      const audit = await getJson<{ items: Array<{ method: string; route: string; params: Record<string, string>; status: number }> }>(`${sut.hub.httpUrl}/audit?route=/rollouts&limit=500`);
      const mine = audit.body.items.filter((e) => e.params.id === first.body.id).map((e) => `${e.route} ${e.status}`);
      expect(mine).toEqual(expect.arrayContaining(['/rollouts/:id/pause 200', '/rollouts/:id/pause 409', '/rollouts/:id/resume 200', '/rollouts/:id/abort 200']));
      expect(audit.body.items.filter((e) => e.route === '/rollouts' && e.method === 'POST').map((e) => e.status)).toEqual(expect.arrayContaining([201, 409, 422]));
    });

    it('serves artifacts to targeted devices only, by their credential, with exact length and Range; refusals are counted', async () => {
      const { version, artifact } = await seedVersion();
      const id = newId('dev');
      const password = await provision(id);
      const stranger = newId('dev');
      const strangerPassword = await provision(stranger);
      const created = await post('/rollouts', { modelVersion: version, target: { deviceIds: [id] }, stages: [{ percent: 100 }] });
      expect(created.status).toBe(201);
      const url = `${sut.hub.httpUrl}/rollouts/artifacts/${version}`;

      const whole = await fetch(url, { headers: { authorization: basic(id, password) } });
      expect(whole.status).toBe(200);
      expect(whole.headers.get('content-length')).toBe(String(artifact.length));
      expect(Buffer.from(await whole.arrayBuffer())).toEqual(artifact);

      const part = await fetch(url, { headers: { authorization: basic(id, password), range: 'bytes=10-' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes 10-${artifact.length - 1}/${artifact.length}`);
      expect(Buffer.from(await part.arrayBuffer())).toEqual(artifact.subarray(10));
      const beyond = await fetch(url, { headers: { authorization: basic(id, password), range: `bytes=${artifact.length + 5}-` } });
      expect(beyond.status).toBe(416);
      expect(beyond.headers.get('content-range')).toBe(`bytes */${artifact.length}`);

      expect((await fetch(url, { headers: { authorization: basic(id, 'wrong-password') } })).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: basic('nobody-here', 'x') } })).status).toBe(401);
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` } })).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: basic(stranger, strangerPassword) } })).status).toBe(403);
      expect((await hubFetch(url)).status).toBe(200); // an operator (here the admin key)

      // The offer carried a download token: good for this device and version, nothing else.
      await eventually(async () => (offers.get(id)?.at(-1)?.downloadToken ? true : undefined), 10_000, `offer to ${id}`);
      const token = offers.get(id)!.at(-1)!.downloadToken!;
      const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
      const byToken = await fetch(url, bearer(token));
      expect(byToken.status).toBe(200);
      expect(Buffer.from(await byToken.arrayBuffer())).toEqual(artifact);
      const { version: otherVersion } = await seedVersion();
      expect((await fetch(`${sut.hub.httpUrl}/rollouts/artifacts/${otherVersion}`, bearer(token))).status).toBe(401);
      expect((await fetch(url, bearer(token.replace(id, stranger)))).status).toBe(401);
      const [exp, mac] = token.slice(`sdt_${id}.`.length).split('.') as [string, string];
      expect((await fetch(url, bearer(`sdt_${id}.${Number(exp) + 60}.${mac}`))).status).toBe(401);
      expect((await fetch(url, bearer('sdt_garbage'))).status).toBe(401);

      const metrics = await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text();
      for (const reason of ['bad_password', 'unknown_device', 'missing_credentials', 'not_targeted', 'bad_token']) {
        expect(metrics).toMatch(new RegExp(`shelfsight_rollout_artifact_refused_total\\{reason="${reason}"\\} [1-9]`));
      }
      expect((await post(`/rollouts/${created.body.id}/abort`)).status).toBe(200);
      // Once aborted, the device may not read it any more, by credential or token.
      expect((await fetch(url, { headers: { authorization: basic(id, password) } })).status).toBe(403);
      expect((await fetch(url, bearer(token))).status).toBe(403);
    });

    it('`shelf rollouts` creates, lists, shows and aborts over the REST API', async () => {
      const { version } = await seedVersion();
      const ids = [newId('dev'), newId('dev')];
      for (const id of ids) await provision(id);
      const shelf = async (...args: string[]) => {
        const p = spawnShelf(['rollouts', ...args, '--hub-url', sut.hub.httpUrl], { HUB_API_KEY: TEST_ADMIN_KEY });
        return { code: await p.exited, out: p.stdout(), err: p.stderr() };
      };
      const created = await shelf('create', '--model-version', version, '--devices', ids.join(','), '--stages', '50,100', '--soak', '30', '--max-failure-percent', '10');
      expect(created.code).toBe(0);
      const view = JSON.parse(created.out.trim().split('\n').pop()!) as RolloutJson;
      expect(view).toMatchObject({ modelVersion: version, state: 'running' });
      expect(view.stages.map((s) => s.devices)).toEqual([1, 1]);
      expect(created.err).toContain(`rollout ${view.id} ${version} running stage 1/2`);
      expect((await shelf('list', '--state', 'running')).out).toContain(`rollout ${view.id}`);
      expect(JSON.parse((await shelf('show', view.id)).out.trim()).devices).toHaveLength(2);
      const aborted = await shelf('abort', view.id);
      expect(aborted.err).toContain('aborted');
      const again = await shelf('resume', view.id);
      expect(again.code).not.toBe(0);
      expect(again.err).toMatch(/HTTP 409 rollout .* is aborted: cannot resume/);
      expect((await shelf('create', '--model-version', version, '--stages', '100')).err).toMatch(/exactly one target/);
    });

    it('offers each device once when the POST and the stage engine deliver at the same time', async () => {
      const { version } = await seedVersion();
      const ids = Array.from({ length: 30 }, () => newId('dev'));
      for (const id of ids) await provision(id); // never connect: the offers stay retained
      const rollouts = sut.hub.app.get(RolloutsService);
      // The engine ticks every 100 ms here; more passes while the POST delivers.
      let racing = true;
      const racer = (async () => {
        while (racing) {
          await Promise.all([rollouts.tick(), rollouts.tick()]);
          await new Promise((r) => setImmediate(r));
        }
      })();
      const created = await post('/rollouts', { modelVersion: version, target: { deviceIds: ids }, stages: [{ percent: 100 }] });
      expect(created.status).toBe(201);
      await new Promise((r) => setTimeout(r, 500));
      racing = false;
      await racer;
      await eventually(async () => (ids.every((id) => (offers.get(id) ?? []).length > 0) ? true : undefined), 10_000, 'every offer seen');
      expect(ids.map((id) => (offers.get(id) ?? []).filter((o) => o?.offerId === created.body.id).length)).toEqual(ids.map(() => 1));
      expect((await post(`/rollouts/${created.body.id}/abort`)).status).toBe(200);
    });

    it('counts malformed rollout statuses and keeps going', async () => {
      const id = newId('dev');
      const c = await connectAsync(sut.hub.mqttUrl, { clientId: id });
      await c.publishAsync(deviceTopic(id, 'rollout-status'), Buffer.from('{not json'), { qos: 1 });
      await c.publishAsync(deviceTopic(id, 'rollout-status'), Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, deviceId: id, state: 'active' })), { qos: 1 });
      await c.endAsync();
      await eventually(async () => {
        const metrics = await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text();
        return /shelfsight_payloads_rejected_total\{channel="rollout-status",reason="invalid_json"\} [1-9]/.test(metrics) &&
          /shelfsight_payloads_rejected_total\{channel="rollout-status",reason="schema"\} [1-9]/.test(metrics)
          ? true
          : undefined;
      }, 10_000, 'rejections counted');
      expect((await getJson(`${sut.hub.httpUrl}/health`)).status).toBe(200);
    });
  });
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function pngOf(n: number): Buffer {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(`rollout-frame-${n}`)]);
}

/**
 * A device that speaks the rollout contract by hand: on an offer it reports offered,
 * downloading, verified, shadowing, then a shadow run in which "milk" would double, and
 * refuses activation by the offer's shadow gate (reason shadow_gate), as an agent does.
 */
class GateDevice {
  readonly offers: ModelOffer[] = [];
  private constructor(
    readonly id: string,
    private readonly client: MqttClient,
  ) {}

  static async connect(url: string, id: string): Promise<GateDevice> {
    const client = await connectAsync(url, { clientId: id, reconnectPeriod: 0 });
    const device = new GateDevice(id, client);
    client.on('message', (_topic, payload) => {
      if (payload.length === 0) return;
      const offer = parsePayload(ModelOfferSchema, payload);
      if (offer.ok) void device.onOffer(offer.value);
    });
    await client.subscribeAsync(deviceTopic(id, 'model-offer'), { qos: 1 });
    return device;
  }

  private async onOffer(offer: ModelOffer): Promise<void> {
    this.offers.push(offer);
    const base = { v: SCHEMA_VERSION, deviceId: this.id, offerId: offer.offerId, modelVersion: offer.signed.manifest.modelVersion, activeVersion: 'stand-in-1' };
    const shadow = {
      frames: 20,
      agreement: 0.5,
      activeMeanConfidence: 0.8,
      candidateMeanConfidence: 0.8,
      histogram: { active: [0, 0, 0, 0, 0, 0, 0, 20, 0, 0], candidate: [0, 0, 0, 0, 0, 0, 0, 20, 0, 0] },
      categories: { milk: { active: 5, candidate: 15 }, juice: { active: 15, candidate: 5 } },
    };
    for (const state of ['offered', 'downloading', 'verified', 'shadowing'] as const) await this.send({ ...base, state, at: new Date().toISOString() });
    // (Statuses of one millisecond: the later step wins.)
    const shadowingAt = new Date().toISOString();
    await this.send({ ...base, state: 'rejected', reason: 'shadow_gate', detail: 'milk would change by 0.50 of the frames (max 0.1)', shadow, at: new Date(Date.now() + 1).toISOString() });
    // A late redelivery of an earlier step must not undo the verdict.
    await this.send({ ...base, state: 'shadowing', at: shadowingAt });
  }

  private async send(status: Record<string, unknown>): Promise<void> {
    await this.client.publishAsync(deviceTopic(this.id, 'rollout-status'), Buffer.from(JSON.stringify(status)), { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
