import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { silentLogger } from '@shelfsight/common';
import {
  DEFAULT_MODEL_LINE,
  deviceTopic,
  encodePayload,
  keyIdOf,
  labelsHash,
  ModelCommandSchema,
  ModelOfferSchema,
  parsePayload,
  SCHEMA_VERSION,
  signManifest,
  signModelCommand,
  type ModelOffer,
} from '@shelfsight/contracts';
import { agentConfig, STAND_IN_BACKBONE_CHECKSUM, STAND_IN_CATEGORIES, StandInClassifier, standInHeadArtifact, startAgent, type AgentHandle } from '@shelfsight/agent';
import { spawnShelf } from '@shelfsight/cli';
import { PrismaService } from '@shelfsight/hub';
import { seedStandInVersion } from './support/flipped-head';
import { releaseKeysFixture, type ReleaseKeysFixture } from './support/release-keys';
import { hasExternalPostgres } from './support/services';
import { eventually, getJson, hubFetch, startTestHub, TEST_ADMIN_KEY, type TestHub } from './support/test-hub';

const run = promisify(execFile);
/** Another label list (one category renamed): a head of it counts on the same model line. */
const OTHER_LABELS = STAND_IN_CATEGORIES.map((c) => (c === 'milk' ? 'oat-milk' : c));

interface DeviceView {
  deviceId: string;
  state: string;
  reason: string | null;
}
interface RolloutView {
  id: string;
  state: string;
  counts: Record<string, number>;
  devices?: DeviceView[];
}

/**
 * Keys the database cannot give away, with a real hub (given a release key file and a
 * root-signed list, as `shelf keys` makes them), a real agent provisioned with the root only,
 * and an attacker on the broker who holds a leaked release key or none.
 */
describe('rollout keys against a real hub and agent', () => {
  jest.setTimeout(180_000);
  const dbKind = hasExternalPostgres() ? 'postgres' : 'pglite';
  let tmp: string;
  let fx: ReleaseKeysFixture;
  let sut: TestHub;
  let attacker: MqttClient;
  let agent: AgentHandle;
  let feeder: NodeJS.Timeout;
  const tag = randomBytes(3).toString('hex');
  const deviceId = `keys-dev-${tag}`;
  const stranger = generateKeyPairSync('ed25519').privateKey;
  /** Every offer the hub published for the device (the attacker can read the broker). */
  const heard: ModelOffer[] = [];
  let n = 0;

  beforeAll(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'release-keys-'));
    fx = releaseKeysFixture(tmp);
    sut = await startTestHub(dbKind, 'aedes', { ...fx.hubEnv, ROLLOUT_TICK_MS: '100' });
    attacker = await connectAsync(sut.hub.mqttUrl, { clientId: `attacker-${tag}` });
    attacker.on('message', (_topic, payload) => {
      const o = payload.length > 0 ? parsePayload(ModelOfferSchema, payload) : undefined;
      if (o?.ok) heard.push(o.value);
    });
    await attacker.subscribeAsync(deviceTopic(deviceId, 'model-offer'), { qos: 1 });

    // Provisioning hands out the root only, and it is the admin's offline root.
    const provisioned = await (await hubFetch(`${sut.hub.httpUrl}/rollouts/trusted-keys`)).text();
    expect(provisioned).toContain(`${keyIdOf(fx.root)} `);
    const password = ((await (await hubFetch(`${sut.hub.httpUrl}/devices/${deviceId}/credentials`, { method: 'POST' })).json()) as { password: string }).password;
    agent = await startAgent(
      agentConfig({
        deviceId,
        site: 'site-k',
        mqttUrl: sut.hub.mqttUrl,
        mqttUsername: deviceId,
        mqttPassword: password,
        stateDir: path.join(tmp, 'device'),
        trustedKeys: fx.trustedKeysFile,
        hubHttpUrl: sut.hub.httpUrl,
        shadowFrames: 1,
        heartbeatMs: 200,
      }),
      { classifier: new StandInClassifier('stand-in-1'), logger: silentLogger },
    );
    await eventually(async () => ((await getJson<Array<{ id: string; backboneId: string | null }>>(`${sut.hub.httpUrl}/devices`)).body.some((d) => d.id === deviceId && d.backboneId === 'stand-in') ? true : undefined), 20_000, 'device birth');
    let frame = 0;
    feeder = setInterval(() => {
      frame += 1;
      agent.offer({ frameId: `k-${frame}`, site: 'site-k', location: 'A-01-1-A', capturedAt: new Date().toISOString(), image: Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(`k-${frame}`)]), source: 'test' });
    }, 100);
  });

  afterAll(async () => {
    clearInterval(feeder);
    await agent?.stop();
    await attacker?.endAsync();
    await sut?.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  /** A releasable stand-in head in the registry. */
  const seedVersion = async (labels: string[] = STAND_IN_CATEGORIES) => {
    const version = `kv-${tag}-${++n}`;
    await seedStandInVersion(sut, version, labels);
    return version;
  };
  /** A rollout to the device that stays running after activation (a long soak), so a forged status would land in it. */
  const rollOut = async (version: string) => {
    const res = await hubFetch(`${sut.hub.httpUrl}/rollouts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        modelVersion: version,
        target: { deviceIds: [deviceId] },
        stages: [{ percent: 100, minSoakSeconds: 3600, abort: { maxFailurePercent: 0, minDevices: 1 } }],
        policy: { shadowFrames: 0, shadowGate: false, health: false, overrideReason: 'release-keys test: about signatures, not the judgement of heads' },
      }),
    });
    expect(res.status).toBe(201);
    const id = ((await res.json()) as { id: string }).id;
    await eventually(async () => (agent.heads.modelVersion === version ? true : undefined), 30_000, `${version} active`);
    return id;
  };
  const view = async (id: string) => (await getJson<RolloutView>(`${sut.hub.httpUrl}/rollouts/${id}`)).body;
  const hubMetric = async (re: RegExp) => eventually(async () => (re.test(await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text()) ? true : undefined), 15_000, `hub metric ${re.source}`);
  const agentMetric = async (re: RegExp) => eventually(async () => (re.test(await agent.metrics()) ? true : undefined), 15_000, `agent metric ${re.source}`);

  /** What an attacker publishes on the device's offer topic: a manifest signed by `signer`, in an envelope naming `offerId`. */
  const forgeOffer = async (signer: KeyObject, offerId: string, over: { modelVersion?: string; releaseCounter?: number; labels?: string[] } = {}) => {
    const version = over.modelVersion ?? `evil-${tag}-${++n}`;
    const artifact = standInHeadArtifact(version, over.labels ?? STAND_IN_CATEGORIES);
    const now = Date.now();
    const signed = signManifest(
      {
        modelVersion: version,
        offerId,
        modelLine: DEFAULT_MODEL_LINE,
        releaseCounter: over.releaseCounter ?? 1_000_000,
        backbone: { id: 'stand-in', checksum: STAND_IN_BACKBONE_CHECKSUM },
        labelsHash: labelsHash(over.labels ?? STAND_IN_CATEGORIES),
        artifact: { sha256: createHash('sha256').update(artifact).digest('hex'), length: artifact.length },
        issuedAt: new Date(now - 60_000).toISOString(),
        expiresAt: new Date(now + 3_600_000).toISOString(),
      },
      signer,
    );
    const offer = { v: SCHEMA_VERSION, deviceId, offerId, signed, artifactPath: `/rollouts/artifacts/${version}`, offeredAt: new Date().toISOString() } as const;
    await attacker.publishAsync(deviceTopic(deviceId, 'model-offer'), encodePayload(ModelOfferSchema, offer), { qos: 1 });
    return version;
  };

  it('a forged offer carrying a real rollout id is refused and counted as an attack, not against the rollout; a forged rollback is refused and counted', async () => {
    const version = await seedVersion();
    const id = await rollOut(version);
    await eventually(async () => ((await view(id)).counts.active === 1 ? true : undefined), 15_000, 'rollout counts the device active');

    await forgeOffer(stranger, id);
    await hubMetric(/shelfsight_rollout_attacks_total\{reason="unknown_key"\} 1/);
    const after = await view(id);
    expect(after.state).toBe('running');
    expect(after.counts.rejected ?? 0).toBe(0);
    expect(after.devices).toEqual([expect.objectContaining({ deviceId, state: 'active', reason: null })]);
    expect(agent.heads.modelVersion).toBe(version);

    // Rollback commands: one signed by a stranger, one unsigned (the old shape): neither moves the device.
    const forged = signModelCommand({ deviceId, offerId: id, command: 'rollback', modelVersion: version, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString() }, stranger);
    await attacker.publishAsync(deviceTopic(deviceId, 'model-command'), encodePayload(ModelCommandSchema, forged), { qos: 1 });
    await attacker.publishAsync(deviceTopic(deviceId, 'model-command'), Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, deviceId, offerId: id, command: 'rollback', modelVersion: version, issuedAt: new Date().toISOString() })), { qos: 1 });
    await agentMetric(/shelf_agent_model_commands_refused_total\{reason="unknown_key"\} 1/);
    await agentMetric(/shelf_agent_model_commands_malformed_total 1/);
    expect(agent.heads.modelVersion).toBe(version);
    expect((await view(id)).devices).toEqual([expect.objectContaining({ state: 'active' })]);
    expect((await hubFetch(`${sut.hub.httpUrl}/rollouts/${id}/abort`, { method: 'POST' })).status).toBe(200);
  });

  it('a leaked release key is revoked by a newer root-signed list: the device refuses its manifests without re-provisioning; a replayed older manifest for another label list is refused', async () => {
    // The old head, on another label list: its genuine offer is what gets replayed later.
    const old = await seedVersion(OTHER_LABELS);
    const oldId = await rollOut(old);
    const replay = heard.find((o) => o.offerId === oldId)!;
    expect(replay.signed.manifest.labelsHash).toBe(labelsHash(OTHER_LABELS));
    expect((await hubFetch(`${sut.hub.httpUrl}/rollouts/${oldId}/abort`, { method: 'POST' })).status).toBe(200);

    // Still listed: the leaked key's manifest passes the signature checks (the artifact does not exist on the hub).
    await forgeOffer(fx.leaked, `ro_evil_${tag}_1`);
    await agentMetric(/shelf_agent_model_rejected_total\{reason="download_failed"\} 1/);
    expect(agent.heads.modelVersion).toBe(old);

    // The admin signs list v2 without it on the offline root's machine and publishes it (no device is touched).
    const list2 = path.join(tmp, 'key-list-v2.json');
    const shelf = async (...args: string[]) => {
      const p = spawnShelf(args, { HUB_URL: sut.hub.httpUrl, HUB_API_KEY: TEST_ADMIN_KEY });
      const code = await p.exited;
      if (code !== 0) throw new Error(`shelf ${args.join(' ')} exited ${code}: ${p.stderr()}`);
      return p.stdout();
    };
    await shelf('keys', 'list', 'sign', '--root', path.join(tmp, 'root'), '--list-version', '2', '--keys', fx.hubEnv.ROLLOUT_RELEASE_KEY_FILE!, '--out', list2);
    expect(await shelf('keys', 'list', 'publish', list2)).toMatch(/published key list v2/);
    await agentMetric(/shelf_agent_key_list_version 2/);
    expect(((await (await fetch(`${sut.hub.httpUrl}/rollouts/key-list`)).json()) as { list: { version: number } }).list.version).toBe(2);

    // Revoked: the same kind of forgery is now refused before any download, and counted as an attack.
    await forgeOffer(fx.leaked, `ro_evil_${tag}_2`);
    await agentMetric(/shelf_agent_model_rejected_total\{reason="unknown_key"\} 2/);
    await hubMetric(/shelfsight_rollout_attacks_total\{reason="unknown_key"\} 2/);
    expect(agent.heads.modelVersion).toBe(old);

    // The hub's own key still releases, and its newer release moves the model line on.
    const current = await seedVersion();
    const currentId = await rollOut(current);
    // The genuine, unexpired offer of the older release (another label list) comes again: a replay on the line.
    await attacker.publishAsync(deviceTopic(deviceId, 'model-offer'), encodePayload(ModelOfferSchema, replay), { qos: 1 });
    await agentMetric(/shelf_agent_model_rejected_total\{reason="replayed_counter"\} 1/);
    await hubMetric(/shelfsight_rollout_attacks_total\{reason="replayed_counter"\} 1/);
    expect(agent.heads.modelVersion).toBe(current);
    expect((await view(currentId)).devices).toEqual([expect.objectContaining({ state: 'active' })]);

    // The replayed v1 list (which named the leaked key) is refused too.
    await attacker.publishAsync('shelfsight/v1/hub/release-keys', Buffer.from(JSON.stringify(fx.signList(1, [fx.release, fx.leaked]))), { qos: 1 });
    await agentMetric(/shelf_agent_key_lists_refused_total\{reason="not_newer"\} 1/);
  });

  /** What a private key looks like in any encoding a dump could hold it in. */
  const privateParts = (keys: KeyObject[]) =>
    keys.flatMap((k) => {
      const der = k.export({ type: 'pkcs8', format: 'der' });
      const seed = der.subarray(der.length - 32);
      return [der.toString('base64'), seed.toString('base64'), seed.toString('hex'), seed.toString('base64url')];
    });
  /** The hub's whole database as text: pg_dump on PostgreSQL, every text, JSON and bytea column on PGlite. */
  const dumpOf = async (hub: TestHub): Promise<string> => {
    if (dbKind === 'postgres') {
      const dump = (await run('pg_dump', ['--data-only', hub.db.url], { maxBuffer: 256 * 1024 * 1024 })).stdout;
      expect(dump).toMatch(/rollout_key_lists/);
      return dump;
    }
    {
      const prisma = hub.hub.app.get(PrismaService);
      const cols = await prisma.$queryRaw<Array<{ table_name: string; column_name: string }>>`
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')`;
      const parts: string[] = [];
      for (const c of cols) {
        const rows = await prisma.$queryRawUnsafe<Array<{ v: string | null }>>(`SELECT "${c.column_name}"::text AS v FROM "${c.table_name}"`);
        parts.push(...rows.map((r) => r.v ?? ''));
      }
      return parts.join('\n');
    }
  };

  it('holds no private key material in its database (pg_dump, or every text column)', async () => {
    const dump = await dumpOf(sut);
    expect(dump.length).toBeGreaterThan(1000);
    expect(dump).not.toMatch(/PRIVATE KEY/);
    for (const secret of privateParts([fx.root, fx.release, fx.leaked])) expect(dump.includes(secret)).toBe(false);
    // The public halves are there (the list), so the search looked in the right place.
    expect(dump).toContain(keyIdOf(fx.release));
  });

  it('as `npm start` does (no keys given): generates its release key and a demo root in DATA_DIR, mode 0600, and its database holds neither', async () => {
    const demo = await startTestHub(dbKind, 'aedes');
    try {
      const dir = path.join(demo.dataDir, 'rollout-keys');
      const files = (await fsp.readdir(dir)).sort();
      expect(files).toEqual(['demo-root-key.pem', 'release-key.pem']);
      const keys: KeyObject[] = [];
      for (const f of files) {
        expect((await fsp.stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
        keys.push(createPrivateKey(await fsp.readFile(path.join(dir, f), 'utf8')));
      }
      const dump = await dumpOf(demo);
      expect(dump).not.toMatch(/PRIVATE KEY/);
      for (const secret of privateParts(keys)) expect(dump.includes(secret)).toBe(false);
      const [root, release] = keys as [KeyObject, KeyObject];
      expect(dump).toContain(keyIdOf(release));
      expect(await (await hubFetch(`${demo.hub.httpUrl}/rollouts/trusted-keys`)).text()).toContain(keyIdOf(root));
    } finally {
      await demo.stop();
    }
  });
});
