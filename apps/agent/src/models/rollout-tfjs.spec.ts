import { createHash, generateKeyPairSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { silentLogger } from '@shelfsight/common';
import {
  DEFAULT_MODEL_LINE,
  LABELS_FILE,
  MANIFEST_FILE,
  ModelOfferSchema,
  SCHEMA_VERSION,
  WEIGHTS_FILE,
  deviceTopic,
  encodePayload,
  labelsHash,
  packArtifact,
  signManifest,
  type ModelManifest,
  type RolloutStatus,
} from '@shelfsight/contracts';
import { TRAIN_DEFAULTS, trainModel } from '@shelfsight/vision';
import { startAgent, type AgentHandle } from '../agent';
import { agentConfig } from '../config';
import { FakeHub, waitUntil } from '../testing/fake-hub';
import { startRolloutRig, type RolloutRig } from '../testing/rollout-rig';
import type { TestBroker } from '../testing/test-broker';
import { tinyArtifact } from '../../../../test/support/model-artifacts';
import { GROCERY_DIR, REFERENCE_BACKBONE, requireShared } from '../../../../test/support/workspace-data';

const run = requireShared('the tfjs head rollout tests') ? describe : describe.skip;

const LABELS = ['bananas', 'milk'];
const PHOTOS: Record<string, string> = { bananas: 'train/Fruit/Banana', milk: 'train/Packages/Milk' };

async function photosOf(dir: string): Promise<string[]> {
  const all = (await fsp.readdir(dir, { recursive: true })).map(String).filter((f) => f.endsWith('.jpg'));
  return all.sort().map((f) => path.join(dir, f));
}

/**
 * Rolling a real head out to a `--classifier tfjs` agent: two heads trained quickly on a few
 * grocery photos with the reference backbone; the first is the agent's configured model, the
 * second arrives as the registry's artifact (the `shelf train` folder as a tar), is shadowed
 * on real photos and swapped in without dropping a frame. Heads for another backbone or
 * feature size are refused.
 */
run('tfjs head rollouts (reference backbone, grocery photos)', () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;
  let operator: MqttClient;
  let rig: RolloutRig;
  let agent: AgentHandle | undefined;
  const artifacts = new Map<string, Buffer>();
  const statuses: RolloutStatus[] = [];
  const key = generateKeyPairSync('ed25519');
  const deviceId = `tfjs-rollout-${process.pid}`;
  let v1: ModelManifest;
  let v2: ModelManifest;
  let v2Dir: string;
  let frames: Buffer[];
  /** The heads' labels, in output order (what the manifest's labels hash covers). */
  let headLabels: string[];

  beforeAll(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'rollout-tfjs-'));
    const photos = Object.fromEntries(await Promise.all(LABELS.map(async (l) => [l, await photosOf(path.join(GROCERY_DIR, PHOTOS[l] as string))] as const)));
    const csv = async (name: string, from: number, count: number) => {
      const file = path.join(tmp, name);
      await fsp.writeFile(file, 'image,label\n' + LABELS.flatMap((l) => photos[l]!.slice(from, from + count).map((p) => `${p},${l}`)).join('\n') + '\n');
      return file;
    };
    const train = async (out: string, from: number) =>
      (await trainModel({ ...TRAIN_DEFAULTS, backbone: REFERENCE_BACKBONE, data: await csv(`${out}.csv`, from, 4), valData: await csv(`${out}-val.csv`, 40, 2), out: path.join(tmp, out), cacheDir: path.join(tmp, 'cache'), distortions: {}, epochs: 10, logger: silentLogger })).manifest;
    v1 = await train('v1', 0);
    v2Dir = path.join(tmp, 'v2');
    v2 = await train('v2', 4);
    headLabels = (await fsp.readFile(path.join(v2Dir, LABELS_FILE), 'utf8')).split('\n').filter((l) => l.length > 0);
    frames = await Promise.all(LABELS.flatMap((l) => photos[l]!.slice(20, 30)).map((p) => fsp.readFile(p)));
  }, 240_000);

  afterAll(async () => {
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  beforeEach(async () => {
    rig = await startRolloutRig({ operatorId: `operator-${process.pid}`, statusTopic: deviceTopic(deviceId, 'rollout-status'), statuses, artifacts, releaseKeys: [key.privateKey] });
    ({ broker, hub, operator } = rig);
    await fsp.writeFile(path.join(tmp, 'keys'), rig.trustedKeysFile);
    agent = await startAgent(
      agentConfig({
        deviceId,
        site: 'site-1',
        mqttUrl: broker.url,
        stateDir: path.join(tmp, `state-${Date.now()}`),
        classifier: 'tfjs',
        modelDir: path.join(tmp, 'v1'),
        trustedKeys: path.join(tmp, 'keys'),
        hubHttpUrl: rig.httpUrl,
        shadowFrames: 4,
        queueSize: 64,
      }),
      { logger: silentLogger },
    );
    await waitUntil(() => agent!.stats().connected, 20_000, 'connected');
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await rig.stop();
  });

  /** Serve `tar` as `version` and offer it, the manifest signed for the reference backbone. */
  const offer = async (version: string, counter: number, tar: Buffer) => {
    artifacts.set(`/artifacts/${version}`, tar);
    const signed = signManifest(
      {
        modelVersion: version,
        offerId: `o-${version}-${counter}`,
        modelLine: DEFAULT_MODEL_LINE,
        releaseCounter: counter,
        backbone: { id: v1.backbone.id, checksum: v1.backbone.checksum },
        labelsHash: labelsHash(headLabels),
        artifact: { sha256: createHash('sha256').update(tar).digest('hex'), length: tar.length },
        issuedAt: new Date(Date.now() - 60_000).toISOString(),
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
      key.privateKey,
    );
    const payload = encodePayload(ModelOfferSchema, { v: SCHEMA_VERSION, deviceId, offerId: `o-${version}-${counter}`, signed, artifactPath: `/artifacts/${version}`, offeredAt: new Date().toISOString() });
    await operator.publishAsync(deviceTopic(deviceId, 'model-offer'), payload, { qos: 1 });
  };
  const folderTar = async (dir: string, manifest?: Buffer) =>
    packArtifact({
      manifest: manifest ?? (await fsp.readFile(path.join(dir, MANIFEST_FILE))),
      weights: await fsp.readFile(path.join(dir, WEIGHTS_FILE)),
      labels: await fsp.readFile(path.join(dir, LABELS_FILE)),
    });
  const seen = (version: string, state: RolloutStatus['state']) => statuses.find((s) => s.modelVersion === version && s.state === state);
  const offerFrames = (from: number, count: number) => {
    for (let i = from; i < from + count; i++) {
      agent!.offer({ frameId: `f-${i}`, site: 'site-1', location: `A-01-1-${i}`, capturedAt: new Date().toISOString(), image: frames[i % frames.length]!, source: 'test' });
    }
  };

  it('shadows a registry artifact on the running backbone and swaps it in without dropping a frame', async () => {
    expect(agent!.heads.modelVersion).toBe(v1.version);
    await offer(v2.version, 1, await folderTar(v2Dir));
    await waitUntil(() => seen(v2.version, 'shadowing') !== undefined, 30_000, 'shadowing', () => statuses.map((s) => `${s.state}:${s.reason ?? ''}:${s.detail ?? ''}`));
    // Twenty real photos in one go: four shadowed, the rest across the swap.
    offerFrames(0, 20);
    await waitUntil(() => seen(v2.version, 'active') !== undefined, 60_000, 'active');
    await agent!.idle(60_000);
    const active = seen(v2.version, 'active');
    expect(active?.shadow?.frames).toBe(4);
    expect(Object.keys(active?.shadow?.categories ?? {}).every((c) => LABELS.includes(c))).toBe(true);
    expect(agent!.stats().frames).toEqual({ detected: 20, rejected: 0, dropped: 0 });
    const versions = hub.framesOf(deviceId).sort((a, b) => a.seq - b.seq).map((d) => d.modelVersion);
    expect(versions).toHaveLength(20);
    const firstNew = versions.indexOf(v2.version);
    expect(firstNew).toBeGreaterThanOrEqual(4);
    // Old head up to the swap, the new one for every frame after it.
    expect(versions).toEqual([...Array<string>(firstNew).fill(v1.version), ...Array<string>(20 - firstNew).fill(v2.version)]);
    expect(agent!.heads.modelVersion).toBe(v2.version);
    expect(agent!.heads.previousVersion).toBe(v1.version);
  });

  it('refuses a head whose artifact names another backbone checksum or another input size', async () => {
    const manifest = JSON.parse(await fsp.readFile(path.join(v2Dir, MANIFEST_FILE), 'utf8')) as ModelManifest;
    const foreign = { ...manifest, version: 'foreign-1', backbone: { ...manifest.backbone, checksum: 'f'.repeat(64) } };
    await offer('foreign-1', 2, await folderTar(v2Dir, Buffer.from(JSON.stringify(foreign))));
    const tiny = tinyArtifact({ version: 'narrow-1', labels: headLabels, kernel: [[1, 0], [0, 1], [1, 1], [0, 0]] });
    const tinyManifest = JSON.parse(tiny.manifest.toString('utf8')) as ModelManifest;
    tinyManifest.backbone = { ...tinyManifest.backbone, id: v1.backbone.id, checksum: v1.backbone.checksum };
    await offer('narrow-1', 3, await packArtifact({ ...tiny, manifest: Buffer.from(JSON.stringify(tinyManifest)) }));
    await waitUntil(() => seen('narrow-1', 'rejected') !== undefined && seen('foreign-1', 'rejected') !== undefined, 30_000, 'both refused', () => statuses.map((s) => `${s.modelVersion}:${s.state}:${s.reason ?? ''}`));
    expect(seen('foreign-1', 'rejected')).toMatchObject({ reason: 'load_failed' });
    expect(seen('foreign-1', 'rejected')?.detail).toMatch(/is for backbone .* this device runs/);
    expect(seen('narrow-1', 'rejected')).toMatchObject({ reason: 'load_failed' });
    expect(seen('narrow-1', 'rejected')?.detail).toMatch(/takes 4 features, the backbone gives \d+/);
    expect(agent!.heads.modelVersion).toBe(v1.version);
    expect(agent!.heads.candidate).toBeUndefined();
  });
});
