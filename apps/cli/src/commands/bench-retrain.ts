import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Client } from 'pg';
import { z } from 'zod';
import { cfg, loadConfig } from '@shelfsight/common';
import { decodeTrainingRows, TrainingJobViewSchema, type TrainingJobView } from '@shelfsight/contracts';
import { discoverEmbeddedUrl, freePort, spawnShelf, waitForHttp } from '../bench/processes';
import { createScratchDatabase, type ScratchDatabase } from '../bench/scratch-database';
import { hubJson } from '../hub-client';
import { addConfigOptions, flagsFrom } from '../options';

const SPEC = {
  data: { env: 'SHELF_BENCH_DATA', flag: 'data', description: 'base dataset (class folders or CSV), e.g. the grocery train.csv of `shelf dataset grocery-store`', schema: z.string().min(1) },
  backbone: { env: 'SHELF_BACKBONE', flag: 'backbone', description: 'backbone of the base and the samples (folder, built-in, catalogue name)', schema: z.string().min(1) },
  samples: { env: 'BENCH_SAMPLES', flag: 'samples', description: 'labelled samples inserted (embeddings drawn from the base rows, jittered)', schema: cfg.int(500, 0) },
  epochs: { env: 'SHELF_EPOCHS', flag: 'epochs', description: 'epochs of the measured job', schema: z.coerce.number().positive().default(40) },
  agents: { env: 'BENCH_AGENTS', flag: 'agents', description: 'simulated devices streaming detections', schema: cfg.int(20, 1) },
  rate: { env: 'BENCH_RATE', flag: 'rate', description: 'frames per second per simulated device', schema: z.coerce.number().positive().default(50) },
  repeat: { env: 'BENCH_REPEAT', flag: 'repeat', description: 'measured jobs (each after its own ingest baseline); medians reported', schema: cfg.int(3, 1) },
  baselineS: { env: 'BENCH_BASELINE_S', flag: 'baseline-s', description: 'seconds of ingest measured before the job', schema: cfg.int(15, 1) },
  databaseUrl: { env: 'DATABASE_URL', flag: 'database-url', description: 'PostgreSQL server (scratch database); unset = the hub\u2019s embedded PGlite', schema: cfg.url(['postgres', 'postgresql']) },
} as const;

/**
 * `shelf bench retrain`: a real retraining job through a hub process and its worker child
 * (base dataset + labelled samples from stored embeddings, softmax head) while a simulated
 * fleet streams detections. A warm-up job first fills the bottleneck cache for the base
 * (not measured). Prints retrain_seconds and ingest_ratio_during_training.
 */
export function registerBenchRetrain(bench: Command): void {
  const cmd = bench
    .command('retrain')
    .description('Retraining job time (base bottlenecks cached + labelled sample embeddings) and detection ingest during it; prints retrain_seconds, ingest_ratio_during_training');
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const work = mkdtempSync(join(tmpdir(), 'shelfsight-bench-retrain-'));
    let scratch: ScratchDatabase | undefined;
    const httpPort = await freePort();
    const mqttPort = await freePort();
    const benchKey = randomBytes(24).toString('base64url');
    const hubEnv: NodeJS.ProcessEnv = {
      DATA_DIR: join(work, 'hub'),
      HTTP_HOST: '127.0.0.1',
      MQTT_HOST: '127.0.0.1',
      HTTP_PORT: String(httpPort),
      MQTT_PORT: String(mqttPort),
      DATABASE_URL: '',
      MQTT_URL: '',
      TRAINING_WORKER: 'child',
      TRAINING_BACKBONE: c.backbone,
      // The bench's dataset is wherever it was given: the one root jobs may read from.
      TRAINING_DATASET_ROOTS: dirname(resolve(c.data)),
      // A key of its own, an open broker for the simulated fleet, no rate limit: the bench measures the job and ingest.
      HUB_API_KEY: benchKey,
      MQTT_AUTH: 'off',
      HTTP_RATE_PER_MINUTE: '100000000',
    };
    if (c.databaseUrl) {
      scratch = await createScratchDatabase(c.databaseUrl, 'shelfsight_bench');
      hubEnv.DATABASE_URL = scratch.url;
    }
    const hubUrl = `http://127.0.0.1:${httpPort}`;
    const hub = spawnShelf(['hub'], hubEnv);
    let sim: ReturnType<typeof spawnShelf> | undefined;
    const log = (m: string) => process.stderr.write(`bench retrain: ${m}\n`);
    try {
      await waitForHttp(`${hubUrl}/health`, 120_000, () => (hub.child.exitCode !== null ? `hub exited: ${hub.stderr().slice(-2000)}` : undefined));
      const databaseUrl = scratch?.url ?? (await discoverEmbeddedUrl(hub.stdout() + hub.stderr()));
      const sql = new Client({ connectionString: databaseUrl });
      sql.on('error', (err) => log(`database connection lost: ${err.message}`));
      await sql.connect();
      const runJob = async (body: unknown): Promise<TrainingJobView> => {
        let job = await hubJson({ hubUrl, apiKey: benchKey }, 'POST', '/training-jobs', TrainingJobViewSchema, body);
        while (job.status === 'queued' || job.status === 'running') {
          await new Promise((r) => setTimeout(r, 250));
          job = await hubJson({ hubUrl, apiKey: benchKey }, 'GET', `/training-jobs/${job.id}`, TrainingJobViewSchema);
        }
        if (job.status !== 'done') throw new Error(`job ${job.id} ${job.status}: ${job.error}`);
        return job;
      };

      log('warm-up job: base bottlenecks into the cache (not measured)');
      const warm = await runJob({ base: { dataset: c.data }, samples: 'none', head: { type: 'softmax', epochs: 1 } });
      const sha = (await sql.query('SELECT training_set_sha256 FROM model_versions WHERE version = $1', [warm.resultVersion])).rows[0]?.training_set_sha256 as string;
      const base = decodeTrainingRows(readFileSync(join(work, 'hub', 'blobs', sha.slice(0, 2), sha)));
      const backboneId = (await sql.query('SELECT backbone_id FROM model_versions WHERE version = $1', [warm.resultVersion])).rows[0]?.backbone_id as string;
      await insertSamples(sql, base, c.samples, backboneId);
      log(`${base.label.length} base rows, ${c.samples} labelled samples inserted`);

      sim = spawnShelf(
        ['sim', '--agents', String(c.agents), '--rate', String(c.rate), '--frames-per-agent', String(1_000_000), '--mqtt-url', `mqtt://127.0.0.1:${mqttPort}`, '--state-dir', join(work, 'sim'), '--site', 'bench-retrain'],
        { LOG_LEVEL: 'warn' },
      );
      const count = async () => (await sql.query('SELECT count(*)::int AS n FROM detections')).rows[0].n as number;
      await new Promise((r) => setTimeout(r, 5000)); // fleet connected and streaming
      const load = loadavg()[0];
      const runs: Array<{ retrainSeconds: number; baseline: number; during: number; job: TrainingJobView }> = [];
      for (let i = 0; i < c.repeat; i++) {
        const b0 = await count();
        const t0 = Date.now();
        await new Promise((r) => setTimeout(r, c.baselineS * 1000));
        const baseline = (await count() - b0) / ((Date.now() - t0) / 1000);
        const d0 = await count();
        const j0 = Date.now();
        const job = await runJob({ base: { dataset: c.data }, head: { type: 'softmax', epochs: c.epochs } });
        const during = (await count() - d0) / ((Date.now() - j0) / 1000);
        const retrainSeconds = (Date.parse(job.finishedAt as string) - Date.parse(job.createdAt)) / 1000;
        runs.push({ retrainSeconds, baseline, during, job });
        log(`run ${i + 1}/${c.repeat}: retrain ${retrainSeconds.toFixed(1)} s; ingest ${baseline.toFixed(0)}/s without the job, ${during.toFixed(0)}/s during it`);
      }
      const median = (xs: number[]) => {
        const s = [...xs].sort((a, b) => a - b);
        return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
      };
      const ratios = runs.map((r) => (r.baseline > 0 ? r.during / r.baseline : 0));
      const retrainSeconds = median(runs.map((r) => r.retrainSeconds));
      const baseline = median(runs.map((r) => r.baseline));
      const during = median(runs.map((r) => r.during));
      const job = runs[runs.length - 1]!.job;
      await sql.end();
      process.stdout.write(
        JSON.stringify({
          retrain_seconds: +retrainSeconds.toFixed(1),
          ingest_ratio_during_training: +median(ratios).toFixed(3),
          runs: runs.map((r, i) => ({ retrain_seconds: +r.retrainSeconds.toFixed(1), ingest_ratio: +ratios[i]!.toFixed(3) })),
          offered_detections_per_s: c.agents * c.rate,
          ingest_per_s_without_job: Math.round(baseline),
          ingest_per_s_during_job: Math.round(during),
          base_rows: job.result?.baseRows ?? null,
          training_rows: job.result?.rows ?? null,
          sample_rows: job.result?.sampleRows ?? null,
          job_seconds: job.result?.seconds ?? null,
          validation_accuracy: job.result?.validationAccuracy ?? null,
          base_bottlenecks_cached: true,
          epochs: c.epochs,
          agents: c.agents,
          rate_per_agent: c.rate,
          database: c.databaseUrl ? 'postgresql' : 'pglite',
          cpus: cpus().length,
          cpu_model: cpus()[0]?.model ?? null,
          load_1m_before: +(load ?? 0).toFixed(2),
          load_1m_after: +(loadavg()[0] ?? 0).toFixed(2),
        }) + '\n',
      );
    } catch (err) {
      log(`failed; hub log tail:\n${hub.stderr().slice(-3000)}\n${hub.stdout().slice(-3000)}`);
      throw err;
    } finally {
      await sim?.stop('SIGKILL');
      await hub.stop();
      if (scratch) await scratch.drop().catch(() => undefined);
      rmSync(work, { recursive: true, force: true });
    }
  });
}

/** Labelled samples whose embeddings are base rows with a little noise (what agents send for frames like the base's). */
async function insertSamples(sql: Client, base: ReturnType<typeof decodeTrainingRows>, n: number, backboneId: string): Promise<void> {
  const run = randomBytes(3).toString('hex');
  for (let start = 0; start < n; start += 100) {
    const values: unknown[] = [];
    const rows: string[] = [];
    for (let i = start; i < Math.min(n, start + 100); i++) {
      const r = (i * 7919) % base.label.length;
      const e = Buffer.alloc(base.dim * 4);
      for (let k = 0; k < base.dim; k++) e.writeFloatLE((base.x[r * base.dim + k] as number) * (1 + (((i + k) % 11) - 5) * 0.01), k * 4);
      const label = base.labels[base.label[r] as number] as string;
      const p = values.length;
      values.push(`bench-${run}-${i}`, backboneId, e, base.dim, label);
      rows.push(
        `('bench-samples', $${p + 1}, 'low_confidence', $${p + 1}, 'bench-retrain', 'A', 'A-01-1-A', now(), $${p + 5}, 0.4, '[]', 'bench', $${p + 2}, $${p + 3}, $${p + 4}, '${'0'.repeat(64)}', 1, 1, 1, $${p + 5}, 0.4, 0.1, 1, '[]', 'bench', 'labelled', $${p + 5}, 'bench', now())`,
      );
    }
    await sql.query(
      `INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
        predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
        scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, state, label, labelled_by, labelled_at)
       VALUES ${rows.join(', ')}`,
      values,
    );
  }
}
