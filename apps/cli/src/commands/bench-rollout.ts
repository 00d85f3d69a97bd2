import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { connectAsync, type IPublishPacket, type MqttClient } from 'mqtt';
import { generate as generateMqttPacket } from 'mqtt-packet';
import { Client } from 'pg';
import { z } from 'zod';
import { cfg, createLogger, loadConfig, type ConfigOf } from '@shelfsight/common';
import { STAND_IN_BACKBONE_CHECKSUM, STAND_IN_CATEGORIES, standInHeadArtifact, startSimulatedFleet } from '@shelfsight/agent';
import { deviceTopic, labelsHash } from '@shelfsight/contracts';
import { applyMigrations } from '@shelfsight/db';
import { BLOB_STORE, loadHubConfig, PrismaService, startHub, type BlobStore, type HubHandle } from '@shelfsight/hub';
import { DatabaseBackendsCpu, machineInfo, ownCpuSeconds, processCpuSeconds } from '../bench/cpu';
import { spawnShelf, type ShelfProcess } from '../bench/processes';
import { WindowProfile } from '../bench/profile';
import { createScratchDatabase, SCRATCH_DATABASE_OPTION } from '../bench/scratch-database';
import { issueDeviceCredential } from '../hub-client';
import { addConfigOptions, flagsFrom, onShutdown } from '../options';

const SPEC = {
  agents: { env: 'BENCH_AGENTS', flag: 'agents', description: 'simulated devices the version is rolled out to', schema: cfg.int(1000, 1) },
  processes: { env: 'BENCH_PROCESSES', flag: 'processes', description: 'child processes the agents are spread over', schema: cfg.int(2, 1) },
  shadowFrames: {
    env: 'BENCH_SHADOW_FRAMES',
    flag: 'shadow-frames',
    description: 'policy.shadowFrames of the rollout; 0 = activate right after verification (no frames needed); > 0 = every agent gets synthetic frames at --rate',
    schema: cfg.int(0, 0),
  },
  rate: { env: 'BENCH_RATE', flag: 'rate', description: 'synthetic frames per second per agent (with --shadow-frames > 0)', schema: z.coerce.number().positive().default(5) },
  timeoutS: { env: 'BENCH_TIMEOUT_S', flag: 'timeout-s', description: 'give up waiting for the rollout after this long', schema: cfg.int(300, 1) },
  databaseUrl: SCRATCH_DATABASE_OPTION,
  profile: { env: 'BENCH_PROFILE', flag: 'profile', description: 'write a CPU profile of the hub process over the timed window to this file (.cpuprofile), and one per fleet process beside it (FILE.fleet-N.cpuprofile, from its agents\u2019 start)', schema: z.string().optional() },
} as const;

/** What the parent hands each child process (a JSON file). */
const FleetPlanSchema = z.object({
  prefix: z.string().min(1),
  agents: z.number().int().min(1),
  mqttUrl: z.string(),
  hubHttpUrl: z.string(),
  trustedKeys: z.string(),
  stateDir: z.string(),
  passwords: z.record(z.string(), z.string()),
  rate: z.number().positive(),
  frames: z.boolean(),
  /** Write a CPU profile of this child from its agents' start until SIGTERM here. */
  profile: z.string().optional(),
});
type FleetPlan = z.infer<typeof FleetPlanSchema>;

const DEVICE_PREFIX = 'bench-ro-';
/** Devices whose MQTT traffic the benchmark watches (bytes and statuses per device, the steps' ceilings). */
const WIRE_SAMPLE = 50;

/**
 * `shelf bench rollout`: a hub on a scratch PostgreSQL database, --agents provisioned devices
 * run as real agents (real MQTT link, download, verification and activation code, stand-in
 * classifier and head format) in --processes child processes, a stand-in head registered,
 * then `POST /rollouts` to all of them in one stage; timed from the POST until every device
 * reported `active` (`GET /rollouts` counts).
 */
export function registerBenchRollout(bench: Command): void {
  const cmd = bench
    .command('rollout')
    .description('Fleet rollout: seconds from POST /rollouts until --agents simulated devices (real link, download, verification, activation) report active, and bytes on the wire per device');
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const result = await runRolloutBench(c);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });

  // The agents' side: one child process per share of the fleet (started by `shelf bench rollout`).
  bench
    .command('rollout-fleet <plan>', { hidden: true })
    .description('internal: run a share of the `bench rollout` fleet from a plan file')
    .action(async (planFile: string) => {
      const plan = FleetPlanSchema.parse(JSON.parse(await readFile(planFile, 'utf8')));
      await runFleet(plan);
    });
}

type BenchConfig = ConfigOf<typeof SPEC>;

async function runRolloutBench(c: BenchConfig): Promise<Record<string, unknown>> {
  const machineBefore = machineInfo();
  const scratch = await createScratchDatabase(c.databaseUrl, 'shelfsight_bench_rollout');
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-bench-rollout-'));
  const apiKey = randomBytes(24).toString('base64url');
  const withKey = (init: RequestInit = {}): RequestInit => ({ ...init, headers: { ...(init.headers as Record<string, string>), 'X-API-Key': apiKey } });
  const children: ShelfProcess[] = [];
  let hub: HubHandle | undefined;
  let observer: MqttClient | undefined;
  let sql: Client | undefined;
  try {
    await applyMigrations(scratch.url);
    hub = await startHub(
      loadHubConfig({}, {
        DATABASE_URL: scratch.url, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_HOST: '127.0.0.1', DATA_DIR: join(work, 'hub'),
        HUB_API_KEY: apiKey, HTTP_RATE_PER_MINUTE: '100000000', ROLLOUT_TICK_MS: '250',
        // An open broker, so this process can watch every device's offer and statuses (their bytes); devices still
        // send their credentials, and the artifact route checks them (or the offer's download token) as always.
        MQTT_AUTH: 'off',
      }),
      { logLevels: process.env.HUB_LOGS ? ['log', 'warn', 'error'] : ['error'] },
    );
    const h = hub;
    sql = new Client({ connectionString: scratch.url });
    await sql.connect();

    // 1. Devices: a credential each (scrypt on the hub: a few at a time).
    const perProcess = Math.ceil(c.agents / c.processes);
    const shares = Array.from({ length: c.processes }, (_, p) => ({ prefix: `${DEVICE_PREFIX}${p + 1}-`, agents: Math.max(0, Math.min(perProcess, c.agents - p * perProcess)) })).filter((s) => s.agents > 0);
    const deviceIds = shares.flatMap((s) => Array.from({ length: s.agents }, (_, i) => `${s.prefix}${i + 1}`));
    const passwords = new Map<string, string>();
    process.stderr.write(`bench rollout: provisioning ${deviceIds.length} devices\n`);
    const queue = [...deviceIds];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) passwords.set(id, (await issueDeviceCredential(h.httpUrl, apiKey, id)).password);
      }),
    );
    const trustedKeys = join(work, 'trusted-keys');
    writeFileSync(trustedKeys, await (await fetch(`${h.httpUrl}/rollouts/trusted-keys`, withKey())).text());

    // 2. A releasable stand-in head in the registry (artifact in the blob store, as `shelf models register` leaves it).
    const version = `bench-ro-${randomBytes(3).toString('hex')}`;
    const labels = [...STAND_IN_CATEGORIES].reverse();
    const artifact = standInHeadArtifact(version, labels);
    const blob = await h.app.get<symbol, BlobStore>(BLOB_STORE).put(artifact);
    await h.app.get(PrismaService).$executeRaw`
      INSERT INTO model_versions (version, backbone_id, backbone_checksum, labels, category_set, head_type, manifest, artifact_sha256, artifact_bytes,
        releasable, source, created_at)
      VALUES (${version}, 'stand-in', ${STAND_IN_BACKBONE_CHECKSUM}, ${JSON.stringify(labels)}::jsonb, ${labelsHash([...labels].sort())}, 'stand-in',
        '{}'::jsonb, ${blob.sha256}, ${blob.bytes}, true, 'upload', now())`;

    // 3. The fleet, in child processes; wait until the hub has every birth.
    process.stderr.write(`bench rollout: starting ${deviceIds.length} agents in ${shares.length} processes\n`);
    for (const [p, share] of shares.entries()) {
      const plan: FleetPlan = {
        ...share,
        mqttUrl: h.mqttUrl,
        hubHttpUrl: h.httpUrl,
        trustedKeys,
        stateDir: join(work, `fleet-${p + 1}`),
        passwords: Object.fromEntries(deviceIds.filter((id) => id.startsWith(share.prefix)).map((id) => [id, passwords.get(id)!])),
        rate: c.rate,
        frames: c.shadowFrames > 0,
        ...(c.profile ? { profile: `${c.profile}.fleet-${p + 1}.cpuprofile` } : {}),
      };
      const planFile = join(work, `plan-${p + 1}.json`);
      writeFileSync(planFile, JSON.stringify(plan));
      children.push(spawnShelf(['bench', 'rollout-fleet', planFile], { LOG_LEVEL: 'warn' }, (chunk) => process.stderr.write(chunk)));
    }
    await until(async () => {
      for (const child of children) if (child.child.exitCode !== null) throw new Error(`fleet process exited with ${child.child.exitCode}: ${child.stderr().slice(-2000)}`);
      const n = (await sql!.query<{ n: number }>(`SELECT count(*)::int AS n FROM devices WHERE id LIKE '${DEVICE_PREFIX}%' AND backbone_id = 'stand-in'`)).rows[0]!.n;
      process.stderr.write(`\rbench rollout: ${n}/${deviceIds.length} agents connected`);
      return n >= deviceIds.length;
    }, 600_000, 'every agent to connect');
    process.stderr.write('\n');

    // 4. Watch the wire: offers and statuses as MQTT packets (their exact encoded size), artifact requests as TCP bytes.
    // MQTT on a sample of the devices only: the broker is in this process, and a copy of every
    // device's messages to an observer would be the hub's work too.
    const sample = deviceIds.filter((_, i) => i % Math.max(1, Math.floor(deviceIds.length / WIRE_SAMPLE)) === 0).slice(0, WIRE_SAMPLE);
    observer = await connectAsync(h.mqttUrl, { clientId: `bench-ro-observer-${randomBytes(3).toString('hex')}`, reconnectPeriod: 0 });
    const wire = { offers: 0, offerBytes: 0, lastOfferAt: 0, statuses: 0, statusBytes: 0 };
    /** Per status state: how many devices reported it, and when the last of them did (the stage ceilings). */
    const reported = new Map<string, { n: number; lastAt: number }>();
    observer.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      if (payload.length === 0) return;
      // As delivered to the device (QoS 1: a packet id; not retained on a live subscription) plus the 4-byte PUBACK.
      const bytes = publishPacketBytes(topic, payload, packet.qos) + (packet.qos > 0 ? 4 : 0);
      if (topic.endsWith('/model-offer')) {
        wire.offers += 1;
        wire.offerBytes += bytes;
        wire.lastOfferAt = performance.now();
      } else {
        wire.statuses += 1;
        wire.statusBytes += bytes;
        const state = /"state":"([a-z_]+)"/.exec(payload.toString('utf8'))?.[1] ?? 'unknown';
        const r = reported.get(state) ?? { n: 0, lastAt: 0 };
        reported.set(state, { n: r.n + 1, lastAt: performance.now() });
      }
    });
    await observer.subscribeAsync(sample.flatMap((id) => [deviceTopic(id, 'model-offer'), deviceTopic(id, 'rollout-status')]), { qos: 1 });
    const http = { sockets: new Set<Socket>(), served: 0, byToken: 0, byCredential: 0, lastServedAt: 0 };
    h.app.getHttpServer().on('request', (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      if (!req.url?.startsWith('/rollouts/artifacts/')) return;
      http.sockets.add(req.socket);
      if (/^Bearer\s/i.test(req.headers.authorization ?? '')) http.byToken += 1;
      else http.byCredential += 1;
      res.once('finish', () => {
        if (res.statusCode !== 200 && res.statusCode !== 206) return;
        http.served += 1;
        http.lastServedAt = performance.now();
      });
    });

    // 5. The rollout, timed from the POST until every device is active (or failed).
    const dbCpu = new DatabaseBackendsCpu(sql, scratch.url);
    await dbCpu.start();
    const profile = new WindowProfile(c.profile);
    await profile.start();
    const cpu0 = { hub: ownCpuSeconds(), fleet: children.map((ch) => processCpuSeconds(ch.child.pid) ?? 0) };
    const t0 = performance.now();
    const res = await fetch(`${h.httpUrl}/rollouts`, withKey({
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ modelVersion: version, target: { all: true }, stages: [{ percent: 100 }], policy: { shadowFrames: c.shadowFrames, shadowGate: false, health: false, overrideReason: 'bench rollout: times delivery to the fleet, not the judgement of its (reversed-label) head' } }),
    }));
    const postS = (performance.now() - t0) / 1000;
    if (res.status !== 201) throw new Error(`POST /rollouts: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
    const rolloutId = ((await res.json()) as { id: string }).id;
    let counts: Record<string, number> = {};
    let firstActiveS: number | undefined;
    await until(async () => {
      const list = (await (await fetch(`${h.httpUrl}/rollouts?limit=5`, withKey())).json()) as Array<{ id: string; counts: Record<string, number> }>;
      counts = list.find((r) => r.id === rolloutId)?.counts ?? {};
      if (firstActiveS === undefined && (counts.active ?? 0) > 0) firstActiveS = (performance.now() - t0) / 1000;
      const finished = (counts.active ?? 0) + (counts.rejected ?? 0) + (counts.rolled_back ?? 0);
      process.stderr.write(`\rbench rollout: ${((performance.now() - t0) / 1000).toFixed(1)}s offered (sample) ${wire.offers}/${sample.length} downloaded ${http.served} active ${counts.active ?? 0} rejected ${counts.rejected ?? 0}   `);
      return finished >= deviceIds.length;
    }, c.timeoutS * 1000, 'the rollout to finish', 100).catch((err: unknown) => process.stderr.write(`\nbench rollout: ${(err as Error).message}\n`));
    const seconds = (performance.now() - t0) / 1000;
    process.stderr.write('\n');
    const profiled = await profile.stop();
    if (profiled) process.stderr.write(`bench rollout: CPU profile of the window in ${profiled}\n`);
    await dbCpu.sample();
    const cpu = {
      hub: ownCpuSeconds() - cpu0.hub,
      fleet: children.reduce((n, ch, i) => n + ((processCpuSeconds(ch.child.pid) ?? 0) - cpu0.fleet[i]!), 0),
      db: dbCpu.total(),
    };
    // The statuses after the last `active` may still be in flight: a moment for the observer.
    await new Promise((r) => setTimeout(r, 300));
    const httpBytes = [...http.sockets].reduce((n, s) => n + s.bytesRead + s.bytesWritten, 0);
    const devices = deviceIds.length;
    const per = (x: number) => Math.round(x / devices);
    const perSampled = (x: number) => Math.round(x / sample.length);
    const round = (x: number | undefined) => (x === undefined ? null : Math.round(x * 1000) / 1000);
    return {
      agents: devices,
      activated: counts.active ?? 0,
      rejected: counts.rejected ?? 0,
      rolled_back: counts.rolled_back ?? 0,
      seconds: round(seconds),
      artifact_bytes: artifact.length,
      bytes_per_device: perSampled(wire.offerBytes) + per(httpBytes),
      bytes_per_device_is: 'offer (MQTT PUBLISH to the device as encoded by mqtt-packet, QoS 1, + PUBACK; mean of the sampled devices) + artifact download (TCP bytes both ways of the hub sockets that served artifact requests: request and response headers and body)',
      offer_bytes_per_device: perSampled(wire.offerBytes),
      http_bytes_per_device: per(httpBytes),
      status_bytes_per_device: perSampled(wire.statusBytes),
      statuses_per_device: round(wire.statuses / sample.length),
      wire_sample_devices: sample.length,
      downloads: { served: http.served, by_token: http.byToken, by_credential: http.byCredential, connections: http.sockets.size },
      stages: {
        post_s: round(postS),
        sample_offers_published_s: wire.offers >= sample.length ? round((wire.lastOfferAt - t0) / 1000) : null,
        all_downloads_served_s: http.served >= devices ? round((http.lastServedAt - t0) / 1000) : null,
        first_active_s: round(firstActiveS),
        // When the last sampled device reported each step (agents' own view; `all_active_s` is the hub's record of every device).
        sample_reported_s: Object.fromEntries([...reported].filter(([, r]) => r.n >= sample.length).map(([state, r]) => [state, round((r.lastAt - t0) / 1000)])),
        all_active_s: (counts.active ?? 0) >= devices ? round(seconds) : null,
      },
      cpu_s: { hub: round(cpu.hub), fleet: round(cpu.fleet), database: round(cpu.db) },
      shadow_frames: c.shadowFrames,
      processes: children.length,
      method:
        'hub (embedded broker, MQTT_AUTH off so the bench can watch the wire; artifact route with device auth) in this process on a scratch PostgreSQL database; agents in child processes; ' +
        'timed from POST /rollouts (one stage, 100%) until GET /rollouts counts every device active, polled every 100 ms',
      cpus: machineBefore.cores,
      cpu_model: machineBefore.cpu_model,
      load_average_before: machineBefore.load_average,
      load_average_after: machineInfo().load_average,
      node: machineBefore.node,
    };
  } finally {
    await observer?.endAsync().catch(() => undefined);
    await Promise.all(
      children.map(async (ch) => {
        const killer = setTimeout(() => void ch.stop('SIGKILL'), 15_000);
        await ch.stop('SIGTERM');
        clearTimeout(killer);
      }),
    );
    await sql?.end().catch(() => undefined);
    await hub?.stop();
    await scratch.drop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

/** One child's share of the fleet: real agents with trusted keys and the hub's HTTP URL, until SIGTERM. */
async function runFleet(plan: FleetPlan): Promise<void> {
  const logger = createLogger('bench-rollout-fleet', {}, (process.env.LOG_LEVEL as 'warn' | undefined) ?? 'warn');
  const fleet = await startSimulatedFleet({
    agents: plan.agents,
    deviceIdPrefix: plan.prefix,
    rate: plan.rate,
    // No frames unless the rollout shadows: then frames keep coming for the candidates to shadow.
    framesPerAgent: plan.frames ? undefined : 0,
    mqttUrl: plan.mqttUrl,
    stateDir: plan.stateDir,
    site: 'bench-rollout',
    credentials: (deviceId) => {
      const password = plan.passwords[deviceId];
      return password ? { username: deviceId, password } : undefined;
    },
    agent: { trustedKeys: plan.trustedKeys, hubHttpUrl: plan.hubHttpUrl, heartbeatMs: 60_000, shutdownFlushMs: 500 },
    logger,
  });
  const profile = new WindowProfile(plan.profile);
  await profile.start();
  await onShutdown(async () => {
    await profile.stop();
    await fleet.stop();
  });
}

/** Size of an MQTT 3.1.1 PUBLISH packet carrying `payload` on `topic` (what the agents' link speaks). */
function publishPacketBytes(topic: string, payload: Buffer, qos: 0 | 1 | 2): number {
  return generateMqttPacket({ cmd: 'publish', topic, payload, qos, messageId: qos > 0 ? 1 : undefined, retain: false, dup: false }, { protocolVersion: 4 }).length;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
