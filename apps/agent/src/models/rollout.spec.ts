import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { silentLogger } from '@shelfsight/common';
import {
  RolloutStatusSchema,
  SCHEMA_VERSION,
  deviceTopic,
  encodePayload,
  keyIdOf,
  labelsHash,
  ModelOfferSchema,
  parsePayload,
  publicKeyBase64,
  signManifest,
  type RolloutStatus,
  type UnsignedManifest,
} from '@shelfsight/contracts';
import { startAgent, type AgentHandle } from '../agent';
import { STAND_IN_BACKBONE_CHECKSUM, STAND_IN_CATEGORIES, StandInClassifier, standInHeadArtifact } from '../classify/stand-in-classifier';
import { agentConfig, type AgentConfig } from '../config';
import { FakeHub, waitUntil } from '../testing/fake-hub';
import { fakePng, locationOf } from '../testing/frames';
import { TestBroker } from '../testing/test-broker';

const REVERSED = [...STAND_IN_CATEGORIES].reverse();

/**
 * Rollouts end to end on the device side: a real broker, an in-process agent with trusted
 * keys, a hub stand-in that publishes signed offers and serves artifacts over HTTP.
 */
describe('agent rollouts', () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;
  let operator: MqttClient;
  let http: Server;
  let httpUrl: string;
  const artifacts = new Map<string, Buffer>();
  const downloads: Array<{ path: string; auth: string | undefined }> = [];
  /** While set, artifact responses wait for it. */
  let hold: Promise<void> | undefined;
  const statuses: RolloutStatus[] = [];
  let agent: AgentHandle | undefined;
  const key = generateKeyPairSync('ed25519');
  const stranger = generateKeyPairSync('ed25519');
  let n = 0;
  const deviceId = () => `rollout-${process.pid}-${n}`;

  beforeEach(async () => {
    n += 1;
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-rollout-'));
    broker = await TestBroker.start();
    hub = await FakeHub.start(broker.url);
    operator = await connectAsync(broker.url, { clientId: `operator-${process.pid}-${n}` });
    operator.on('message', (_topic, payload) => {
      const s = parsePayload(RolloutStatusSchema, payload);
      if (s.ok) statuses.push(s.value);
    });
    await operator.subscribeAsync('shelfsight/v1/devices/+/rollout-status', { qos: 1 });
    http = createServer((req, res) => {
      downloads.push({ path: req.url ?? '', auth: req.headers.authorization });
      const body = artifacts.get(req.url ?? '');
      if (!body) return void res.writeHead(404).end();
      void Promise.resolve(hold).then(() => res.writeHead(200, { 'content-length': body.length }).end(body));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    await fsp.writeFile(path.join(tmp, 'trusted-keys'), `${keyIdOf(key.publicKey)} ${publicKeyBase64(key.publicKey)}\n`);
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    statuses.length = 0;
    downloads.length = 0;
    hold = undefined;
    artifacts.clear();
    await operator.endAsync();
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
    await hub.stop();
    await broker.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  const start = async (over: Partial<AgentConfig> = {}) => {
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
    agent = await startAgent(config, { classifier: new StandInClassifier('stand-in-1'), logger: silentLogger });
    await waitUntil(() => agent!.stats().connected, 10_000, 'connected');
    return agent;
  };

  /** Serve a stand-in head and offer it, signed with `signer` (the trusted key unless said otherwise). */
  const offer = async (
    version: string,
    counter: number,
    opts: { signer?: KeyObject; manifest?: Partial<UnsignedManifest>; body?: Buffer; retain?: boolean; categories?: string[] } = {},
  ) => {
    const categories = opts.categories ?? REVERSED;
    const artifact = standInHeadArtifact(version, categories);
    const artifactPath = `/api/artifacts/${version}`;
    artifacts.set(artifactPath, opts.body ?? artifact);
    const now = Date.now();
    const signed = signManifest(
      {
        modelVersion: version,
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
    const payload = encodePayload(ModelOfferSchema, { v: SCHEMA_VERSION, deviceId: deviceId(), offerId: `offer-${version}`, signed, artifactPath, offeredAt: new Date().toISOString() });
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

  it('refuses to start with trusted keys and no hub URL, or a key file that does not parse', async () => {
    await expect(start({ hubHttpUrl: undefined })).rejects.toThrow(/AGENT_HUB_HTTP_URL/);
    await fsp.writeFile(path.join(tmp, 'bad-keys'), 'deadbeef notakey\n');
    await expect(start({ trustedKeys: path.join(tmp, 'bad-keys') })).rejects.toThrow(/AGENT_TRUSTED_KEYS.*line 1/);
    agent = undefined;
  });
});
