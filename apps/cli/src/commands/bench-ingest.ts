import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Client } from 'pg';
import { z } from 'zod';
import { cfg, createProgress, loadConfig } from '@shelfsight/common';
import { checkInventoryConsistency } from '@shelfsight/db';
import { freePort, histogramQuantile, spawnShelf, waitForHttp } from '../bench/processes';
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
  keep: { env: 'BENCH_KEEP', flag: 'keep', description: 'keep the scratch database', schema: cfg.bool(false) },
} as const;

/**
 * `shelf bench ingest`: start a hub process, drive it from a separate `shelf sim`
 * process (real agent outbox + link code), wait until every detection is acknowledged,
 * then check the database for lost and double-counted detections and for inventory
 * state and history that disagree with the raw detections.
 */
export function registerBenchIngest(bench: Command): void {
  const cmd = bench
    .command('ingest')
    .description('Ingest throughput: hub process + simulated fleet process; prints detections_per_s, lost, double_counted, p99_commit_ms');
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const perAgent = Math.ceil(c.detections / c.agents);
    const expected = perAgent * c.agents;
    const work = mkdtempSync(join(tmpdir(), 'shelfsight-bench-ingest-'));
    const site = 'bench';
    let scratch: ScratchDatabase | undefined;
    const metricsToken = randomBytes(24).toString('base64url');
    // Unlimited publish rate: the bench measures ingest, not the broker's per-device limit.
    const hubEnv: NodeJS.ProcessEnv = { DATA_DIR: join(work, 'hub'), HTTP_HOST: '127.0.0.1', MQTT_HOST: '127.0.0.1', DATABASE_URL: '', MQTT_URL: '', METRICS_TOKEN: metricsToken, MQTT_AUTH: 'off', MQTT_RATE_PER_S: '1000000', MQTT_BURST: '1000000' };
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
    process.stderr.write(`bench ingest: ${c.agents} agents x ${perAgent} detections, database ${c.databaseUrl ? 'PostgreSQL (scratch db)' : 'embedded PGlite'}, broker ${c.mqttUrl ?? 'embedded aedes'}\n`);
    const hub = spawnShelf(['hub'], hubEnv);
    let sim: ReturnType<typeof spawnShelf> | undefined;
    try {
      await waitForHttp(`${hubUrl}/health`, 120_000, () =>
        hub.child.exitCode !== null ? `hub exited with ${hub.child.exitCode} before it was up: ${hub.stderr().slice(-2000).trim()}` : undefined,
      );
      const databaseUrl = scratch?.url ?? (await discoverEmbeddedUrl(hub.stdout() + hub.stderr()));
      const sql = new Client({ connectionString: databaseUrl });
      await sql.connect();
      const progress = createProgress('ingest', expected);
      let reported = 0;
      const started = Date.now();
      sim = spawnShelf(
        [
          'sim',
          '--agents', String(c.agents),
          '--frames-per-agent', String(perAgent),
          '--rate', String(Math.max(1000, Math.ceil(expected / c.agents))),
          '--queue-size', String(perAgent),
          '--batch-size', String(c.batchSize),
          '--mqtt-url', c.mqttUrl ?? `mqtt://127.0.0.1:${mqttPort}`,
          '--state-dir', join(work, 'sim'),
          '--site', site,
        ],
        { LOG_LEVEL: 'warn' },
      );
      const poll = setInterval(() => {
        void sql
          .query('SELECT count(*)::int AS n FROM detections')
          .then((r) => {
            const n = (r.rows[0] as { n: number }).n;
            progress.tick(n - reported);
            reported = n;
          })
          .catch(() => undefined);
      }, 2000);
      const code = await sim.exited;
      clearInterval(poll);
      const wallS = (Date.now() - started) / 1000;
      if (code !== 0) throw new Error(`sim exited with ${code}: ${sim.stderr().slice(-2000)}`);
      const simResult = JSON.parse(sim.stdout().trim().split('\n').pop() ?? '{}') as { detected: number; dropped: number; unacked: number };
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
        p50_commit_ms: histogramQuantile(metrics, 'shelfsight_commit_duration_ms', 0.5),
        p99_commit_ms: histogramQuantile(metrics, 'shelfsight_commit_duration_ms', 0.99),
        hub_peak_rss_mb: hub.peakRssMb(),
        database: c.databaseUrl ? 'postgresql' : 'pglite',
        broker: c.mqttUrl ? 'external' : 'aedes',
        cpus: cpus().length,
        wall_s: Math.round(wallS * 10) / 10,
      };
      process.stdout.write(JSON.stringify(result) + '\n');
    } finally {
      await sim?.stop('SIGKILL');
      await hub.stop();
      if (scratch && !c.keep) await scratch.drop().catch(() => undefined);
      rmSync(work, { recursive: true, force: true });
    }
  });
}

/** The hub logs the embedded database's address; the benchmark reads the data it wrote there. */
async function discoverEmbeddedUrl(log: string): Promise<string> {
  const m = /serving postgresql:\/\/([\d.]+):(\d+)\/postgres/.exec(log);
  if (!m) throw new Error('could not find the embedded database address in the hub log');
  return `postgresql://postgres:postgres@${m[1]}:${m[2]}/postgres?sslmode=disable`;
}
