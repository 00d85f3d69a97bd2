import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { silentLogger } from '@shelfsight/common';
import {
  DEFAULT_MODEL_LINE,
  SCHEMA_VERSION,
  deviceTopic,
  encodePayload,
  isUnverifiedOfferStatus,
  labelsHash,
  ModelOfferSchema,
  signManifest,
  signModelCommand,
  ModelCommandSchema,
  type OfferPolicy,
  type RolloutStatus,
  type UnsignedManifest,
} from '@shelfsight/contracts';
import { startAgent, type AgentHandle } from '../agent';
import { loadStandInHead, STAND_IN_BACKBONE_CHECKSUM, STAND_IN_CATEGORIES, StandInClassifier, standInHeadArtifact } from '../classify/stand-in-classifier';
import type { HeadLoader } from './rollout-agent';
import { agentConfig, type AgentConfig } from '../config';
import { FakeHub, waitUntil } from '../testing/fake-hub';
import { fakePng, locationOf } from '../testing/frames';
import { startRolloutRig, type RolloutRig } from '../testing/rollout-rig';
import type { TestBroker } from '../testing/test-broker';

const REVERSED = [...STAND_IN_CATEGORIES].reverse();

/** A stand-in head made worse on purpose once it is active: slower per frame, or less sure of itself. */
class DegradedStandIn extends StandInClassifier {
  constructor(
    modelVersion: string,
    categories: string[],
    private readonly degrade: { delayMs?: number; confidenceScale?: number },
  ) {
    super(modelVersion, categories);
  }
  override async classify(image: Buffer) {
    if (this.degrade.delayMs) await new Promise((r) => setTimeout(r, this.degrade.delayMs));
    const c = await super.classify(image);
    const scale = this.degrade.confidenceScale ?? 1;
    return { ...c, confidence: c.confidence * scale, topK: c.topK.map((t) => ({ ...t, confidence: t.confidence * scale })) };
  }
}

/** Loads stand-in heads; the versions named in `degraded` come back degraded. */
const degradingLoader =
  (degraded: Record<string, { delayMs?: number; confidenceScale?: number }>): HeadLoader =>
  async (file, manifest) => {
    const head = await loadStandInHead(file, manifest);
    const d = degraded[manifest.modelVersion];
    return d ? new DegradedStandIn(head.modelVersion, REVERSED, d) : head;
  };

/**
 * Rollouts end to end on the device side: a real broker, an in-process agent with trusted
 * keys, a hub stand-in that publishes signed offers and serves artifacts over HTTP.
 */
describe('agent rollouts', () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;
  let operator: MqttClient;
  let rig: RolloutRig;
  let httpUrl: string;
  const artifacts = new Map<string, Buffer>();
  const downloads: Array<{ path: string; auth: string | undefined }> = [];
  /** While set, artifact responses wait for it. */
  let hold: Promise<void> | undefined;
  const statuses: RolloutStatus[] = [];
  let agent: AgentHandle | undefined;
  const key = generateKeyPairSync('ed25519');
  const stranger = generateKeyPairSync('ed25519');
  /** A second release key in the first key list: revoked in a test by a newer list. */
  const leaked = generateKeyPairSync('ed25519');
  let n = 0;
  const deviceId = () => `rollout-${process.pid}-${n}`;

  beforeEach(async () => {
    n += 1;
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-rollout-'));
    rig = await startRolloutRig({
      operatorId: `operator-${process.pid}-${n}`,
      statusTopic: 'shelfsight/v1/devices/+/rollout-status',
      statuses,
      artifacts,
      releaseKeys: [key.privateKey, leaked.privateKey],
      serve: (req, res, send) => {
        downloads.push({ path: req.url ?? '', auth: req.headers.authorization });
        // As the hub answers a download token it no longer accepts (expired).
        if (req.headers.authorization === 'Bearer stale-token') return void res.writeHead(401).end();
        void Promise.resolve(hold).then(send);
      },
    });
    ({ broker, hub, operator, httpUrl } = rig);
    await fsp.writeFile(path.join(tmp, 'trusted-keys'), rig.trustedKeysFile);
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    downloads.length = 0;
    hold = undefined;
    await rig.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  const start = async (over: Partial<AgentConfig> = {}, loadHead?: HeadLoader) => {
    const config = agentConfig({
      deviceId: deviceId(),
      site: 'site-1',
      mqttUrl: broker.url,
      mqttUsername: deviceId(),
      mqttPassword: 'pw',
      stateDir: path.join(tmp, 'state'),
      trustedKeys: path.join(tmp, 'trusted-keys'),
      hubHttpUrl: httpUrl,
      shadowFrames: 5,
      heartbeatMs: 100,
      ...over,
    });
    agent = await startAgent(config, { classifier: new StandInClassifier('stand-in-1'), logger: silentLogger, ...(loadHead ? { loadHead } : {}) });
    await waitUntil(() => agent!.stats().connected, 10_000, 'connected');
    return agent;
  };

  /** Serve a stand-in head and offer it, signed with `signer` (the trusted key unless said otherwise). */
  const offer = async (
    version: string,
    counter: number,
    opts: { signer?: KeyObject; manifest?: Partial<UnsignedManifest>; body?: Buffer; retain?: boolean; categories?: string[]; policy?: OfferPolicy; downloadToken?: string; offerId?: string } = {},
  ) => {
    const categories = opts.categories ?? REVERSED;
    const artifact = standInHeadArtifact(version, categories);
    const artifactPath = `/api/artifacts/${version}`;
    artifacts.set(artifactPath, opts.body ?? artifact);
    const now = Date.now();
    const signed = signManifest(
      {
        modelVersion: version,
        offerId: `offer-${version}`,
        modelLine: DEFAULT_MODEL_LINE,
        releaseCounter: counter,
        backbone: { id: 'stand-in', checksum: STAND_IN_BACKBONE_CHECKSUM },
        labelsHash: labelsHash(categories),
        artifact: { sha256: createHash('sha256').update(artifact).digest('hex'), length: artifact.length },
        issuedAt: new Date(now - 60_000).toISOString(),
        expiresAt: new Date(now + 3_600_000).toISOString(),
        ...opts.manifest,
      },
      opts.signer ?? key.privateKey,
    );
    const payload = encodePayload(ModelOfferSchema, { v: SCHEMA_VERSION, deviceId: deviceId(), offerId: opts.offerId ?? `offer-${version}`, signed, artifactPath, offeredAt: new Date().toISOString(), ...(opts.policy ? { policy: opts.policy } : {}), ...(opts.downloadToken ? { downloadToken: opts.downloadToken } : {}) });
    await operator.publishAsync(deviceTopic(deviceId(), 'model-offer'), payload, { qos: 1, retain: opts.retain ?? false });
  };

  const statesOf = (version: string) => statuses.filter((s) => s.modelVersion === version).map((s) => s.state);
  const until = (version: string, state: RolloutStatus['state']) =>
    waitUntil(() => statesOf(version).includes(state), 15_000, `${version} ${state}`, () => statuses.map((s) => `${s.modelVersion}:${s.state}:${s.reason ?? ''}`));
  const frames = (from: number, count: number) => {
    for (let i = from; i < from + count; i++) {
      agent!.offer({ frameId: `f-${i}`, site: 'site-1', location: locationOf(i), capturedAt: new Date().toISOString(), image: fakePng(i), source: 'test' });
    }
  };

  it('downloads, verifies, shadows and activates an offered head; a restart keeps it; a replayed older manifest is refused', async () => {
    await start();
    await offer('v2', 2, { retain: true });
    await until('v2', 'shadowing');
    expect(downloads).toEqual([{ path: '/api/artifacts/v2', auth: `Basic ${Buffer.from(`${deviceId()}:pw`).toString('base64')}` }]);
    frames(0, 5);
    await until('v2', 'active');
    expect(statesOf('v2')).toEqual(['offered', 'downloading', 'verified', 'shadowing', 'active']);
    const active = statuses.find((s) => s.state === 'active');
    expect(active).toMatchObject({ activeVersion: 'v2', shadow: { frames: 5 } });
    expect(active?.shadow?.agreement).toBeLessThan(1);
    await agent!.idle(10_000);

    frames(5, 3);
    await agent!.idle(10_000);
    const versions = hub.framesOf(deviceId()).sort((a, b) => a.seq - b.seq).map((d) => d.modelVersion);
    expect(versions).toEqual([...Array<string>(5).fill('stand-in-1'), 'v2', 'v2', 'v2']);
    await waitUntil(() => hub.heartbeats.some((h) => h.deviceId === deviceId() && h.activeModelVersion === 'v2'), 10_000, 'heartbeat with v2');
    expect(await agent!.metrics()).toMatch(/shelf_agent_model_activations_total 1/);

    // Restart on the same state: v2 comes back from disk, and the retained offer finds it active.
    await agent!.stop();
    statuses.length = 0;
    await start();
    await until('v2', 'active');
    expect(hub.births.filter((b) => b.deviceId === deviceId()).map((b) => b.modelVersion)).toEqual(['stand-in-1', 'v2']);
    expect(downloads).toHaveLength(1);

    // An older release, validly signed: a replay.
    await offer('v1', 1);
    await until('v1', 'rejected');
    expect(statuses.find((s) => s.modelVersion === 'v1' && s.state === 'rejected')).toMatchObject({ reason: 'replayed_counter', activeVersion: 'v2' });
    expect(await agent!.metrics()).toMatch(/shelf_agent_model_rejected_total\{reason="replayed_counter"\} 1/);
  });

  it("downloads with the offer's download token (Bearer), and with its credential once the hub refuses the token", async () => {
    await start();
    await offer('b1', 1, { downloadToken: 'fresh-token.123', policy: { shadowFrames: 0 } });
    await until('b1', 'active');
    await offer('b2', 2, { downloadToken: 'stale-token', policy: { shadowFrames: 0 } });
    await until('b2', 'active');
    const basic = `Basic ${Buffer.from(`${deviceId()}:pw`).toString('base64')}`;
    expect(downloads).toEqual([
      { path: '/api/artifacts/b1', auth: 'Bearer fresh-token.123' },
      { path: '/api/artifacts/b2', auth: 'Bearer stale-token' },
      { path: '/api/artifacts/b2', auth: basic },
    ]);
    expect(statesOf('b2')).toEqual(['offered', 'downloading', 'verified', 'shadowing', 'active']);
    expect(agent!.heads.modelVersion).toBe('b2');
  });

  it('says in its heartbeats what it is downloading, then what it is shadowing', async () => {
    await start();
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    await offer('v3', 3);
    const beat = (state: string) => hub.heartbeats.some((h) => h.deviceId === deviceId() && h.activeModelVersion === 'stand-in-1' && h.candidate?.modelVersion === 'v3' && h.candidate.state === state);
    await waitUntil(() => beat('downloading'), 10_000, 'heartbeat: downloading v3');
    release();
    hold = undefined;
    await waitUntil(() => beat('shadowing'), 10_000, 'heartbeat: shadowing v3');
    expect(hub.heartbeats.filter((h) => h.candidate?.state === 'shadowing').at(-1)?.candidate).toMatchObject({ shadowFrames: 0, shadowTarget: 5 });
  });

  it('refuses a tampered artifact, an unknown key, an expired manifest and a foreign backbone, and says why', async () => {
    await start();
    const tampered = standInHeadArtifact('t1', REVERSED);
    tampered[10] ^= 1;
    await offer('t1', 10, { body: tampered });
    await offer('t2', 11, { signer: stranger.privateKey });
    await offer('t3', 12, { manifest: { issuedAt: new Date(Date.now() - 7200_000).toISOString(), expiresAt: new Date(Date.now() - 1000).toISOString() } });
    await offer('t4', 13, { manifest: { backbone: { id: 'mobilenet_v1_050_224', checksum: 'e'.repeat(64) } } });
    await until('t4', 'rejected');
    const reasons = Object.fromEntries(statuses.filter((s) => s.state === 'rejected').map((s) => [s.modelVersion, s.reason]));
    expect(reasons).toEqual({ t1: 'hash_mismatch', t2: 'unknown_key', t3: 'expired', t4: 'foreign_backbone' });
    // Only the offer that passed the manifest checks was downloaded.
    expect(downloads.map((d) => d.path)).toEqual(['/api/artifacts/t1']);
    const metrics = await agent!.metrics();
    for (const r of ['hash_mismatch', 'unknown_key', 'expired', 'foreign_backbone']) expect(metrics).toMatch(new RegExp(`shelf_agent_model_rejected_total\\{reason="${r}"\\} 1`));
    expect(agent!.heads.modelVersion).toBe('stand-in-1');
    expect(agent!.heads.candidate).toBeUndefined();
  });

  it('rolls back by itself to the configured head when the activated head fails to load at start, and reports it', async () => {
    await start();
    await offer('v5', 5);
    await until('v5', 'shadowing');
    frames(0, 5);
    await until('v5', 'active');
    await agent!.stop();
    // The stored head no longer matches its signed hash.
    const stored = path.join(tmp, 'state', 'models', 'v5', 'artifact');
    await fsp.writeFile(stored, standInHeadArtifact('v5', STAND_IN_CATEGORIES));

    statuses.length = 0;
    await start();
    await until('v5', 'rolled_back');
    expect(statuses.find((s) => s.state === 'rolled_back')).toMatchObject({ reason: 'load_failed', activeVersion: 'stand-in-1' });
    expect(agent!.heads.modelVersion).toBe('stand-in-1');
    expect(await agent!.metrics()).toMatch(/shelf_agent_model_rejected_total\{reason="load_failed"\} 1/);
  });

  const pointer = async () => JSON.parse(await fsp.readFile(path.join(tmp, 'state', 'models', 'active.json'), 'utf8')) as { version?: string; previous?: { version: string } };
  /** A command signed by `signer` (the release key unless said otherwise); `payload` sends those bytes instead. */
  const signedCommand = (c: 'rollback' | 'cancel', version: string, signer: KeyObject = key.privateKey, over: { deviceId?: string; expiresAt?: string } = {}) =>
    encodePayload(
      ModelCommandSchema,
      signModelCommand(
        { deviceId: over.deviceId ?? deviceId(), offerId: `offer-${version}`, command: c, modelVersion: version, issuedAt: new Date(Date.now() - 1000).toISOString(), expiresAt: over.expiresAt ?? new Date(Date.now() + 600_000).toISOString() },
        signer,
      ),
    );
  const command = async (c: 'rollback' | 'cancel', version: string, payload?: Buffer) => {
    await operator.publishAsync(deviceTopic(deviceId(), 'model-command'), payload ?? signedCommand(c, version), { qos: 1 });
  };
  const last = (version: string, state: RolloutStatus['state']) => statuses.filter((s) => s.modelVersion === version && s.state === state).at(-1);

  it("shadows for the offer's shadowFrames and refuses activation when the shadow gate breaks, saying which limit", async () => {
    await start();
    // Reversed categories: the candidate never agrees with the active head.
    await offer('g1', 20, { policy: { shadowFrames: 3, shadowGate: { minAgreement: 0.8 } } });
    await until('g1', 'shadowing');
    frames(0, 3);
    await until('g1', 'rejected');
    const refused = last('g1', 'rejected');
    expect(refused).toMatchObject({ reason: 'shadow_gate', activeVersion: 'stand-in-1', shadow: { frames: 3, agreement: 0 } });
    expect(refused?.detail).toMatch(/agreement 0\.0% is below minAgreement 80\.0% over 3 frames/);
    expect(statesOf('g1')).not.toContain('active');
    expect(agent!.heads.modelVersion).toBe('stand-in-1');
    expect(agent!.heads.candidate).toBeUndefined();
    await expect(fsp.stat(path.join(tmp, 'state', 'models', 'active.json'))).rejects.toThrow(/ENOENT/);

    // A category-shift limit, and a gate the same head passes.
    await offer('g2', 21, { policy: { shadowFrames: 4, shadowGate: { maxCategoryShift: 0.2 } }, categories: STAND_IN_CATEGORIES.map((c, i) => (i < 4 ? 'apples' : c)) });
    await until('g2', 'shadowing');
    frames(3, 4);
    await until('g2', 'rejected');
    expect(last('g2', 'rejected')?.detail).toMatch(/category apples would shift by .* above maxCategoryShift 20\.0%/);
    await offer('g3', 22, { policy: { shadowFrames: 2, shadowGate: { minAgreement: 1 } }, categories: STAND_IN_CATEGORIES });
    await until('g3', 'shadowing');
    frames(7, 2);
    await until('g3', 'active');
    expect(last('g3', 'active')).toMatchObject({ shadow: { frames: 2, agreement: 1 } });
    expect(await agent!.metrics()).toMatch(/shelf_agent_model_rejected_total\{reason="shadow_gate"\} 2/);
  });

  it('watches the activated head and rolls back by itself on a latency or confidence regression; a passing watch reports health', async () => {
    await start({}, degradingLoader({ slow: { delayMs: 150 }, unsure: { confidenceScale: 0.3 } }));
    // Warm up first: a cold first frame would make a poor baseline.
    frames(100, 5);
    await agent!.idle(10_000);
    const health = { frames: 4, maxLatencyRatio: 3, maxConfidenceDrop: 0.2 };
    await offer('slow', 30, { policy: { shadowFrames: 3, health } });
    await until('slow', 'shadowing');
    frames(0, 3);
    await until('slow', 'active');
    expect(agent!.heads.modelVersion).toBe('slow');
    frames(3, 4);
    await until('slow', 'rolled_back');
    const back = last('slow', 'rolled_back');
    expect(back).toMatchObject({ reason: 'health_regression', activeVersion: 'stand-in-1', health: { frames: 4 } });
    expect(back?.detail).toMatch(/p95 latency .* is above 3 x the previous head's/);
    expect(back!.health!.p95LatencyMs).toBeGreaterThan(140);
    expect(back!.health!.baseline.p95LatencyMs).toBeLessThan(back!.health!.p95LatencyMs / 3);
    expect(agent!.heads.modelVersion).toBe('stand-in-1');
    expect((await pointer()).version).toBeUndefined();
    await agent!.idle(10_000);
    frames(7, 2);
    await agent!.idle(10_000);
    const versions = hub.framesOf(deviceId()).sort((a, b) => a.seq - b.seq).map((d) => d.modelVersion);
    // Shadow frames on the old head, the watched frames on the new one, then the old one again: none dropped.
    expect(versions).toEqual([...Array<string>(5 + 3).fill('stand-in-1'), ...Array<string>(4).fill('slow'), 'stand-in-1', 'stand-in-1']);

    // Confidence only: a latency spike on a busy machine must not be what this rollback is about.
    await offer('unsure', 31, { policy: { shadowFrames: 3, health: { frames: 4, maxConfidenceDrop: 0.2 } } });
    await until('unsure', 'shadowing');
    frames(9, 3);
    await until('unsure', 'active');
    frames(12, 4);
    await until('unsure', 'rolled_back');
    expect(last('unsure', 'rolled_back')?.detail).toMatch(/mean confidence .* fell by more than 0\.2/);

    await offer('fine', 32, { policy: { shadowFrames: 3, health: { frames: 4, maxConfidenceDrop: 0.5 } } });
    await until('fine', 'shadowing');
    frames(16, 3);
    await until('fine', 'active');
    frames(19, 4);
    await waitUntil(() => statesOf('fine').filter((s) => s === 'active').length === 2, 15_000, 'second active status');
    expect(last('fine', 'active')).toMatchObject({ health: { frames: 4 }, activeVersion: 'fine' });
    expect(agent!.heads.modelVersion).toBe('fine');
    const metrics = await agent!.metrics();
    expect(metrics).toMatch(/shelf_agent_model_rejected_total\{reason="health_regression"\} 2/);
    expect(metrics).toMatch(/shelf_agent_model_rollbacks_total 2/);
  });

  it('rolls back to the previous head and cancels a candidate on command; the same offer is refused ever after, across restarts', async () => {
    await start();
    await offer('v2', 40);
    await until('v2', 'shadowing');
    frames(0, 5);
    await until('v2', 'active');
    await offer('v3', 41, { retain: true, categories: STAND_IN_CATEGORIES });
    await until('v3', 'shadowing');
    frames(5, 5);
    await until('v3', 'active');
    expect(await pointer()).toMatchObject({ version: 'v3', previous: { version: 'v2' } });

    // Garbage and another device's command are counted and ignored.
    await command('rollback', 'v3', Buffer.from('{"v":1,"command":"explode"}'));
    await command('rollback', 'v3', signedCommand('rollback', 'v3', key.privateKey, { deviceId: 'someone-else' }));
    await command('rollback', 'v3');
    await until('v3', 'rolled_back');
    expect(last('v3', 'rolled_back')).toMatchObject({ reason: 'operator', activeVersion: 'v2' });
    expect(agent!.heads.modelVersion).toBe('v2');
    expect(await pointer()).toEqual({ v: 1, version: 'v2', offerId: 'offer-v2' });
    expect(await agent!.metrics()).toMatch(/shelf_agent_model_commands_malformed_total 2/);

    // A candidate cancelled while it shadows.
    await offer('v4', 42, { policy: { shadowFrames: 1000 } });
    await until('v4', 'shadowing');
    await command('cancel', 'v4');
    await until('v4', 'rejected');
    expect(last('v4', 'rejected')).toMatchObject({ reason: 'operator', activeVersion: 'v2' });
    expect(agent!.heads.candidate).toBeUndefined();

    // The same offers again: refused without a download.
    const before = downloads.length;
    await offer('v4', 42);
    await waitUntil(() => last('v4', 'rejected')?.reason === 'rolled_back_before', 10_000, 'v4 rolled_back_before');

    // Restart: v2 comes back (v3 kept as nothing), the retained v3 offer is refused again.
    await agent!.stop();
    statuses.length = 0;
    await start();
    expect(agent!.heads.modelVersion).toBe('v2');
    await until('v3', 'rejected');
    expect(last('v3', 'rejected')).toMatchObject({ reason: 'rolled_back_before', activeVersion: 'v2' });
    expect(downloads.length).toBe(before);
    expect(hub.births.filter((b) => b.deviceId === deviceId()).map((b) => b.modelVersion)).toEqual(['stand-in-1', 'v2']);
    // v2's previous was the configured head: a rollback of v2 returns to it.
    await command('rollback', 'v2');
    await until('v2', 'rolled_back');
    expect(agent!.heads.modelVersion).toBe('stand-in-1');
  });

  const metricIs = (re: RegExp) => waitUntil(async () => re.test(await agent!.metrics()), 10_000, `metric ${re.source}`);

  it('refuses a forged offer carrying a real offer id, and a real manifest under another offer id, before reporting anything else, as attacks', async () => {
    await start();
    await offer('r1', 50, { policy: { shadowFrames: 0 }, retain: true });
    await until('r1', 'active');
    // Signed by a key no root-signed list names, in an envelope naming the real offer.
    await offer('f1', 60, { signer: stranger.privateKey, offerId: 'offer-r1' });
    // A genuine manifest (of offer-f2) moved into another offer's envelope.
    await offer('f2', 61, { offerId: 'offer-r1' });
    await until('f2', 'rejected');
    await until('f1', 'rejected');
    for (const [version, reason] of [['f1', 'unknown_key'], ['f2', 'offer_mismatch']] as const) {
      const said = statuses.filter((s) => s.modelVersion === version);
      // No `offered`, `downloading`...: one refusal, which the hub counts as an attack, not against offer-r1.
      expect(said).toEqual([expect.objectContaining({ state: 'rejected', offerId: 'offer-r1', reason })]);
      expect(isUnverifiedOfferStatus(said[0]!)).toBe(true);
    }
    expect(downloads.map((d) => d.path)).toEqual(['/api/artifacts/r1']);
    expect(agent!.heads.modelVersion).toBe('r1');
    await metricIs(/shelf_agent_model_rejected_total\{reason="offer_mismatch"\} 1/);
  });

  it('refuses forged, tampered, expired, foreign and replayed commands and counts them; a signed command is taken once', async () => {
    await start();
    await offer('c1', 70, { policy: { shadowFrames: 0 } });
    await until('c1', 'active');
    await command('rollback', 'c1', signedCommand('rollback', 'c1', stranger.privateKey));
    const good = signedCommand('rollback', 'c1');
    const tampered = JSON.parse(good.toString()) as Record<string, unknown>;
    await command('rollback', 'c1', Buffer.from(JSON.stringify({ ...tampered, modelVersion: 'stand-in-1', offerId: 'offer-stand-in-1' })));
    await command('rollback', 'c1', signedCommand('rollback', 'c1', key.privateKey, { expiresAt: new Date(Date.now() - 1).toISOString() }));
    // Unsigned (the old shape): malformed on the link.
    await command('rollback', 'c1', Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, deviceId: deviceId(), offerId: 'offer-c1', command: 'rollback', modelVersion: 'c1', issuedAt: new Date().toISOString() })));
    await metricIs(/shelf_agent_model_commands_refused_total\{reason="expired"\} 1/);
    const metrics = await agent!.metrics();
    for (const r of ['unknown_key', 'bad_signature']) expect(metrics).toMatch(new RegExp(`shelf_agent_model_commands_refused_total\\{reason="${r}"\\} 1`));
    await metricIs(/shelf_agent_model_commands_malformed_total 1/);
    expect(agent!.heads.modelVersion).toBe('c1');
    expect(statesOf('c1')).not.toContain('rolled_back');

    await command('rollback', 'c1', good);
    await until('c1', 'rolled_back');
    expect(agent!.heads.modelVersion).toBe('stand-in-1');
    // The same bytes again, after c2 is active: refused as a replay, and c2 stays.
    await offer('c2', 71, { policy: { shadowFrames: 0 } });
    await until('c2', 'active');
    await command('rollback', 'c1', good);
    await metricIs(/shelf_agent_model_commands_refused_total\{reason="replayed"\} 1/);
    expect(agent!.heads.modelVersion).toBe('c2');
  });

  it('takes a newer root-signed key list from MQTT and refuses manifests of the key it revoked, without re-provisioning; older or foreign lists are refused, across a restart', async () => {
    await start();
    await metricIs(/shelf_agent_key_list_version 1/);
    // The leaked key is still listed: its manifests are accepted.
    await offer('k1', 80, { signer: leaked.privateKey, policy: { shadowFrames: 0 } });
    await until('k1', 'active');

    await rig.publishKeyList(2, [key.privateKey]);
    await metricIs(/shelf_agent_key_list_version 2/);
    await offer('k2', 81, { signer: leaked.privateKey });
    await until('k2', 'rejected');
    expect(last('k2', 'rejected')).toMatchObject({ reason: 'unknown_key' });
    expect(statesOf('k2')).toEqual(['rejected']);
    // The key still listed keeps working.
    await offer('k3', 82, { policy: { shadowFrames: 0 } });
    await until('k3', 'active');
    // An older release for another label list, validly signed: a replay on the model line.
    await offer('k4', 79, { categories: STAND_IN_CATEGORIES });
    await until('k4', 'rejected');
    expect(last('k4', 'rejected')).toMatchObject({ reason: 'replayed_counter' });

    // Replaying the older list that still named the leaked key, or a list signed by another root: refused.
    await rig.publishKeyList(1, [key.privateKey, leaked.privateKey]);
    await metricIs(/shelf_agent_key_lists_refused_total\{reason="not_newer"\} 1/);
    await rig.publishKeyList(3, [leaked.privateKey], { signer: stranger.privateKey });
    await metricIs(/shelf_agent_key_lists_refused_total\{reason="unknown_root"\} 1/);

    // A restart keeps v2, even with the foreign list served over HTTP and retained.
    await agent!.stop();
    statuses.length = 0;
    await start();
    expect(agent!.heads.modelVersion).toBe('k3');
    await metricIs(/shelf_agent_key_lists_refused_total\{reason="unknown_root"\} 2/);
    expect(await agent!.metrics()).toMatch(/shelf_agent_key_list_version 2/);
    await offer('k5', 90, { signer: leaked.privateKey });
    await until('k5', 'rejected');
    expect(last('k5', 'rejected')).toMatchObject({ reason: 'unknown_key' });
  });

  it('asks the hub for the key list again after a reconnect (a broker that restarted has lost the retained one)', async () => {
    await start();
    await metricIs(/shelf_agent_key_list_version 1/);
    // Published while the device could not hear it: only the hub has it.
    await rig.publishKeyList(2, [key.privateKey], { retain: false });
    await broker.stop();
    await broker.restart();
    await metricIs(/shelf_agent_key_list_version 2/);
  });

  it('refuses to start with trusted keys and no hub URL, or a key file that does not parse', async () => {
    await expect(start({ hubHttpUrl: undefined })).rejects.toThrow(/AGENT_HUB_HTTP_URL/);
    await fsp.writeFile(path.join(tmp, 'bad-keys'), 'deadbeef notakey\n');
    await expect(start({ trustedKeys: path.join(tmp, 'bad-keys') })).rejects.toThrow(/AGENT_TRUSTED_KEYS.*line 1/);
    agent = undefined;
  });
});
