import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Client } from 'pg';
import { z } from 'zod';
import { cfg, createProgress, loadConfig } from '@shelfsight/common';
import { applyMigrations, checkInventoryConsistency, startEmbeddedPostgres } from '@shelfsight/db';
import { buildIngestMessages, runWriterStage, startDecodeStage } from '@shelfsight/hub';
import { startAckingBroker } from '../bench/acking-broker';
import { commitSettings, DatabaseBackendsCpu, machineInfo, ownCpuSeconds, per1000, processCpuSeconds } from '../bench/cpu';
import { discoverEmbeddedUrl, freePort, histogramQuantile, spawnShelf, waitForHttp, type ShelfProcess } from '../bench/processes';
import { createScratchDatabase, type ScratchDatabase } from '../bench/scratch-database';
import { addConfigOptions, flagsFrom } from '../options';

const SPEC = {
  agents: { env: 'BENCH_AGENTS', flag: 'agents', description: 'simulated devices', schema: z.coerce.number().int().min(1).max(5000).default(50) },
  detections: { env: 'BENCH_DETECTIONS', flag: 'detections', description: 'detections in total', schema: z.coerce.number().int().min(1).default(200_000) },
  databaseUrl: {
    env: 'DATABASE_URL',
    flag: 'database-url',
    description: 'PostgreSQL server to use (a scratch database is created and dropped); unset = the hub\u2019s embedded PGlite',
    schema: cfg.url(['postgres', 'postgresql']),
  },
  mqttUrl: { env: 'MQTT_URL', flag: 'mqtt-url', description: 'external broker; unset = the hub\u2019s embedded broker', schema: cfg.url(['mqtt', 'tcp']) },
  batchSize: { env: 'BENCH_BATCH_SIZE', flag: 'batch-size', description: 'detections per MQTT message', schema: cfg.int(100, 1) },
  rate: {
    env: 'BENCH_RATE',
    flag: 'rate',
    description: 'frames per second each simulated device offers (above what the fleet can take, so the stages, not the sources, set the pace)',
    schema: cfg.int(1000, 1),
  },
  stages: {
    env: 'BENCH_STAGES',
    flag: 'stages',
    description: 'also measure each stage alone: the writer\u2019s SQL fed directly, broker + hub decoding with the writer stubbed, the fleet into a broker nobody subscribes to',
    schema: cfg.bool(true),
  },
  keep: { env: 'BENCH_KEEP', flag: 'keep', description: 'keep the scratch database', schema: cfg.bool(false) },
  cpuProf: {
    env: 'BENCH_CPU_PROF',
    flag: 'cpu-prof',
    description: 'write V8 CPU profiles of the hub and fleet processes into this folder (node --cpu-prof; open in Chrome DevTools)',
    schema: cfg.optionalString(),
  },
} as const;

type BenchConfig = ReturnType<typeof loadConfig<typeof SPEC>>;

interface SimResult {
  detected: number;
  dropped: number;
  unacked: number;
  busy_s: number;
  cpu_s: number;
}

/**
 * `shelf bench ingest`: start a hub process, drive it from a separate `shelf sim`
 * process (real agent outbox + link code), wait until every detection is acknowledged,
 * then check the database for lost and double-counted detections and for inventory
 * state and history that disagree with the raw detections. Reports where the CPU went
 * (per 1,000 detections: fleet process, hub process, the PostgreSQL backends serving
 * the hub, from /proc over the run) and, in the same run, what each stage sustains alone.
 */
export function registerBenchIngest(bench: Command): void {
  const cmd = bench
    .command('ingest')
    .description(
      'Ingest throughput: hub process + simulated fleet process; prints detections_per_s, lost, double_counted, cpu_s_per_1000 {fleet, hub, database} and each stage\u2019s ceiling',
    );
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const perAgent = Math.ceil(c.detections / c.agents);
    const machine = machineInfo();
    process.stderr.write(
      `bench ingest: ${c.agents} agents x ${perAgent} detections, database ${c.databaseUrl ? 'PostgreSQL (scratch db)' : 'embedded PGlite'}, broker ${c.mqttUrl ?? 'embedded aedes'}\n` +
        `machine: ${machine.cpu_model}, ${machine.cores} cores, node ${machine.node}, load average ${machine.load_average.join(' ')}\n`,
    );
    const work = mkdtempSync(join(tmpdir(), 'shelfsight-bench-ingest-'));
    try {
      const e2e = await runEndToEnd(c, perAgent, work);
      process.stderr.write(
        `end to end: ${e2e.result.detections_per_s}/s at the hub; CPU s per 1,000 detections: fleet ${e2e.result.cpu_s_per_1000.fleet ?? '?'}, hub ${e2e.result.cpu_s_per_1000.hub ?? '?'}, database ${e2e.result.cpu_s_per_1000.database ?? (c.databaseUrl ? '? (server not on this machine)' : 'in the hub (PGlite)')}\n`,
      );
      const stages = c.stages ? await runStages(c, perAgent, work) : undefined;
      const result = { ...e2e.result, stages, machine: { ...machine, load_average_after: machineInfo().load_average }, postgres: e2e.settings };
      process.stdout.write(JSON.stringify(result) + '\n');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}

function simArgs(c: BenchConfig, perAgent: number, mqttUrl: string, stateDir: string, site: string): string[] {
  return [
    'sim',
    '--agents', String(c.agents),
    '--frames-per-agent', String(perAgent),
    '--rate', String(c.rate),
    '--queue-size', String(perAgent),
    '--batch-size', String(c.batchSize),
    '--mqtt-url', mqttUrl,
    '--state-dir', stateDir,
    '--site', site,
  ];
}

async function simFinished(sim: ShelfProcess): Promise<SimResult> {
  const code = await sim.exited;
  if (code !== 0) throw new Error(`sim exited with ${code}: ${sim.stderr().slice(-2000)}`);
  return JSON.parse(sim.stdout().trim().split('\n').pop() ?? '{}') as SimResult;
}

async function runEndToEnd(c: BenchConfig, perAgent: number, work: string) {
  const expected = perAgent * c.agents;
  const site = 'bench';
  let scratch: ScratchDatabase | undefined;
  const metricsToken = randomBytes(24).toString('base64url');
  // An open broker with an unlimited publish rate: the bench measures ingest, not device authentication or the per-device limit.
  const hubEnv: NodeJS.ProcessEnv = {
    DATA_DIR: join(work, 'hub'), HTTP_HOST: '127.0.0.1', MQTT_HOST: '127.0.0.1', DATABASE_URL: '', MQTT_URL: '',
    METRICS_TOKEN: metricsToken, MQTT_AUTH: 'off', MQTT_RATE_PER_S: '1000000', MQTT_BURST: '1000000', TRAINING_WORKER: 'off',
    LOG_LEVEL: 'info', // the embedded database's address is read from the hub's info log
  };
  if (c.databaseUrl) {
    scratch = await createScratchDatabase(c.databaseUrl, 'shelfsight_bench');
    hubEnv.DATABASE_URL = scratch.url;
  }
  if (c.mqttUrl) hubEnv.MQTT_URL = c.mqttUrl;
  const httpPort = await freePort();
  const mqttPort = await freePort();
  hubEnv.HTTP_PORT = String(httpPort);
  hubEnv.MQTT_PORT = String(mqttPort);
  const hubUrl = `http://127.0.0.1:${httpPort}`;
  const nodeArgs = (name: string) => (c.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${c.cpuProf}`, `--cpu-prof-name=${name}.cpuprofile`] : []);
  const hub = spawnShelf(['hub'], hubEnv, undefined, nodeArgs('hub'));
  let sim: ShelfProcess | undefined;
  try {
    await waitForHttp(`${hubUrl}/health`, 120_000, () =>
      hub.child.exitCode !== null ? `hub exited with ${hub.child.exitCode} before it was up: ${hub.stderr().slice(-2000).trim()}` : undefined,
    );
    const databaseUrl = scratch?.url ?? (await discoverEmbeddedUrl(hub.stdout() + hub.stderr()));
    const sql = new Client({ connectionString: databaseUrl });
    await sql.connect();
    const settings = await commitSettings(sql);
    process.stderr.write(`postgres: ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
    // PGlite runs inside the hub process: its CPU is the hub's.
    const dbCpu = scratch ? new DatabaseBackendsCpu(sql, scratch.url) : undefined;
    await dbCpu?.start();
    const hubCpuFrom = processCpuSeconds(hub.child.pid);
    const progress = createProgress('ingest', expected);
    let reported = 0;
    let ticks = 0;
    const started = Date.now();
    sim = spawnShelf(simArgs(c, perAgent, c.mqttUrl ?? `mqtt://127.0.0.1:${mqttPort}`, join(work, 'sim'), site), { LOG_LEVEL: 'warn' }, undefined, nodeArgs('fleet'));
    let polling: Promise<void> = Promise.resolve();
    const poll = setInterval(() => {
      polling = (async () => {
        await dbCpu?.sample();
        if (ticks++ % 2 !== 0) return;
        const n = (await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM detections')).rows[0]!.n;
        progress.tick(n - reported);
        reported = n;
      })().catch(() => undefined);
    }, 1000);
    const simResult = await simFinished(sim);
    clearInterval(poll);
    await polling;
    const wallS = (Date.now() - started) / 1000;
    await dbCpu?.sample();
    const hubCpuTo = processCpuSeconds(hub.child.pid);
    progress.done();

    const check = (
      await sql.query(`
        SELECT count(*)::int AS stored, count(DISTINCT (device_id, frame_id))::int AS distinct_frames,
               extract(epoch FROM max(received_at) - min(received_at))::float AS window_s
        FROM detections`)
    ).rows[0] as { stored: number; distinct_frames: number; window_s: number };
    const consistency = await checkInventoryConsistency(sql, 0.5); // the hub's default MIN_CONFIDENCE
    await sql.end();
    const metrics = await (await fetch(`${hubUrl}/metrics`, { headers: { Authorization: `Bearer ${metricsToken}` } })).text();
    const cpu = {
      fleet: simResult.cpu_s,
      hub: hubCpuFrom !== undefined && hubCpuTo !== undefined ? round3(hubCpuTo - hubCpuFrom) : undefined,
      database: dbCpu ? round3OrUndefined(dbCpu.total()) : undefined,
    };
    const result = {
      agents: c.agents,
      detections_sent: simResult.detected,
      detections_stored: check.distinct_frames,
      detections_per_s: Math.round(check.distinct_frames / Math.max(check.window_s, 0.001)),
      end_to_end_detections_per_s: Math.round(simResult.detected / wallS),
      lost: simResult.detected - check.distinct_frames,
      double_counted: check.stored - check.distinct_frames,
      unacked_at_end: simResult.unacked,
      dropped_by_agents: simResult.dropped,
      inventory_mismatches: consistency.stateMismatches,
      history_mismatches: consistency.historyMismatches,
      p50_commit_ms: secondsToMs(histogramQuantile(metrics, 'shelfsight_commit_duration_seconds', 0.5)),
      p99_commit_ms: secondsToMs(histogramQuantile(metrics, 'shelfsight_commit_duration_seconds', 0.99)),
      hub_peak_rss_mb: hub.peakRssMb(),
      database: c.databaseUrl ? 'postgresql' : 'pglite',
      broker: c.mqttUrl ? 'external' : 'aedes',
      cpus: machineInfo().cores,
      wall_s: round1(wallS),
      /** CPU seconds per 1,000 detections stored; database null for PGlite (inside the hub) or a server elsewhere. */
      cpu_s_per_1000: {
        fleet: per1000(cpu.fleet, check.distinct_frames) ?? null,
        hub: per1000(cpu.hub, check.distinct_frames) ?? null,
        database: per1000(cpu.database, check.distinct_frames) ?? null,
      },
      cpu_s: { fleet: cpu.fleet, hub: cpu.hub ?? null, database: cpu.database ?? null },
    };
    return { result, settings };
  } finally {
    await sim?.stop('SIGKILL');
    await hub.stop();
    if (scratch && !c.keep) await scratch.drop().catch(() => undefined);
  }
}

/**
 * The ceiling of each stage alone, in this process (the stage's own CPU is this
 * process's) with the fleet as its own process where it takes part:
 * (a) the writer and its SQL fed pre-built messages; (b) broker + the hub's MQTT
 * decoding and validation, the writer replaced by one that acknowledges at once;
 * (c) the fleet into a broker nobody subscribes to (the broker acks each batch itself).
 */
async function runStages(c: BenchConfig, perAgent: number, work: string) {
  const progress = createProgress('stages', 3);
  const writer = await stageWriter(c, perAgent, work);
  progress.tick();
  process.stderr.write(`stage writer SQL: ${writer.detections_per_s}/s (hub ${writer.cpu_s_per_1000.hub}, database ${writer.cpu_s_per_1000.database ?? 'in process'} CPU s per 1,000)\n`);
  const decode = await stageDecode(c, perAgent, work);
  progress.tick();
  process.stderr.write(`stage broker + hub decode: ${decode.detections_per_s}/s (fleet ${decode.cpu_s_per_1000.fleet}, hub ${decode.cpu_s_per_1000.hub} CPU s per 1,000)\n`);
  const fleet = await stageFleet(c, perAgent, work);
  progress.tick();
  process.stderr.write(`stage fleet alone: ${fleet.detections_per_s}/s (fleet ${fleet.cpu_s_per_1000.fleet}, broker ${fleet.cpu_s_per_1000.broker} CPU s per 1,000)\n`);
  progress.done();
  return { writer_sql: writer, broker_hub_decode: decode, fleet_publish: fleet };
}

async function stageWriter(c: BenchConfig, perAgent: number, work: string) {
  const messages = buildIngestMessages(c.agents, perAgent, c.batchSize, 'bench-stage');
  let url: string;
  let done: () => Promise<void>;
  const env: Record<string, string> = {};
  if (c.databaseUrl) {
    const scratch = await createScratchDatabase(c.databaseUrl, 'shelfsight_bench_stage');
    url = scratch.url;
    done = () => (c.keep ? Promise.resolve() : scratch.drop());
  } else {
    const pg = await startEmbeddedPostgres({ dataDir: join(work, 'stage-pglite') });
    url = pg.url;
    done = () => pg.stop();
    env.DB_POOL_SIZE = '1'; // as the hub runs on PGlite
  }
  try {
    await applyMigrations(url);
    const sql = new Client({ connectionString: url });
    await sql.connect();
    const dbCpu = c.databaseUrl ? new DatabaseBackendsCpu(sql, url) : undefined;
    await dbCpu?.start();
    const sampler = setInterval(() => void dbCpu?.sample().catch(() => undefined), 500);
    const cpuFrom = ownCpuSeconds();
    let run: Awaited<ReturnType<typeof runWriterStage>>;
    try {
      run = await runWriterStage(url, messages, env);
    } finally {
      clearInterval(sampler);
    }
    const cpu = ownCpuSeconds() - cpuFrom;
    await dbCpu?.sample().catch(() => undefined);
    const stored = (await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM detections')).rows[0]!.n;
    await sql.end();
    return {
      detections: run.detections,
      stored,
      detections_per_s: Math.round(run.detections / run.seconds),
      cpu_s_per_1000: { hub: per1000(cpu, run.detections) ?? null, database: per1000(dbCpu?.total(), run.detections) ?? null },
    };
  } finally {
    await done().catch(() => undefined);
  }
}

async function stageDecode(c: BenchConfig, perAgent: number, work: string) {
  const stage = await startDecodeStage();
  try {
    const cpuFrom = ownCpuSeconds();
    const sim = spawnShelf(simArgs(c, perAgent, stage.mqttUrl, join(work, 'sim-decode'), 'bench-decode'), { LOG_LEVEL: 'warn' });
    const simResult = await simFinished(sim);
    const cpu = ownCpuSeconds() - cpuFrom;
    const s = stage.stats();
    return {
      detections: s.detections,
      detections_per_s: throughput(s.detections, s.firstAt, s.lastAt),
      cpu_s_per_1000: { fleet: per1000(simResult.cpu_s, simResult.detected) ?? null, hub: per1000(cpu, s.detections) ?? null },
    };
  } finally {
    await stage.stop();
  }
}

async function stageFleet(c: BenchConfig, perAgent: number, work: string) {
  const broker = await startAckingBroker();
  try {
    const cpuFrom = ownCpuSeconds();
    const sim = spawnShelf(simArgs(c, perAgent, broker.url, join(work, 'sim-fleet'), 'bench-fleet'), { LOG_LEVEL: 'warn' });
    const simResult = await simFinished(sim);
    const cpu = ownCpuSeconds() - cpuFrom;
    const s = broker.stats();
    return {
      detections: simResult.detected,
      detections_per_s: Math.round(simResult.detected / Math.max(simResult.busy_s, 0.001)),
      cpu_s_per_1000: { fleet: per1000(simResult.cpu_s, simResult.detected) ?? null, broker: per1000(cpu, s.detections) ?? null },
    };
  } finally {
    await broker.stop();
  }
}

function throughput(n: number, firstAt: number | undefined, lastAt: number | undefined): number {
  if (firstAt === undefined || lastAt === undefined || n === 0) return 0;
  return Math.round(n / Math.max((lastAt - firstAt) / 1000, 0.001));
}

/** A latency the hub reports in seconds (Prometheus' base unit), in milliseconds as the bench prints it. */
function secondsToMs(s: number | undefined): number | undefined {
  return s === undefined ? undefined : Math.round(s * 1e6) / 1e3;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function round3OrUndefined(x: number | undefined): number | undefined {
  return x === undefined ? undefined : round3(x);
}
