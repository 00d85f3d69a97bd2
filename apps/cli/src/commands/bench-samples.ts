import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { connectAsync, type MqttClient } from 'mqtt';
import { Client } from 'pg';
import sharp from 'sharp';
import { cfg, createProgress, loadConfig } from '@shelfsight/common';
import { deviceTopic, encodeBottleneck, SCHEMA_VERSION, type Sample } from '@shelfsight/contracts';
import { applyMigrations } from '@shelfsight/db';
import { loadHubConfig, SimilarIndex, startHub } from '@shelfsight/hub';
import { spawnShelf } from '../bench/processes';
import { createScratchDatabase, SCRATCH_DATABASE_OPTION } from '../bench/scratch-database';
import { addConfigOptions, flagsFrom } from '../options';

const SPEC = {
  samples: { env: 'BENCH_SAMPLES', flag: 'samples', description: 'samples stored (filled set-based, then queried)', schema: cfg.int(100_000, 1) },
  streamed: { env: 'BENCH_STREAMED', flag: 'streamed', description: 'real MQTT samples (20 KB thumbnail + embedding) sent while detections stream', schema: cfg.int(3000, 1) },
  dim: { env: 'BENCH_DIM', flag: 'dim', description: 'embedding dimension', schema: cfg.int(512, 1) },
  agents: { env: 'BENCH_AGENTS', flag: 'agents', description: 'simulated devices streaming detections meanwhile', schema: cfg.int(20, 1) },
  detections: { env: 'BENCH_DETECTIONS', flag: 'detections', description: 'detections the simulated fleet sends', schema: cfg.int(100_000, 1) },
  requests: { env: 'BENCH_REQUESTS', flag: 'requests', description: 'timed requests per query', schema: cfg.int(300, 1) },
  databaseUrl: SCRATCH_DATABASE_OPTION,
} as const;

const BACKBONE = 'bench-backbone';
const CLUSTERS = 200;
const FILL_CHUNK = 2000;

/**
 * `shelf bench samples`: a hub on a scratch PostgreSQL database with --samples samples
 * (embeddings in clusters, as frames of the same shelves are), then a stream of real
 * MQTT samples while a `shelf sim` process streams detections; then GET /samples
 * (pending, least margin) and GET /samples/:id/similar, timed sequentially.
 */
export function registerBenchSamples(bench: Command): void {
  const cmd = bench
    .command('samples')
    .description('Sample store: samples_per_s while detections stream, then p95 of GET /samples (least margin) and /samples/:id/similar at --samples stored');
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const scratch = await createScratchDatabase(c.databaseUrl, 'shelfsight_bench');
    const benchKey = randomBytes(24).toString('base64url');
    const withKey = { headers: { 'X-API-Key': benchKey } };
    const work = mkdtempSync(join(tmpdir(), 'shelfsight-bench-samples-'));
    const sql = new Client({ connectionString: scratch.url });
    const centres = Array.from({ length: CLUSTERS }, () => randomUnit(c.dim));
    try {
      await applyMigrations(scratch.url);
      await sql.connect();
      const fillStarted = Date.now();
      await fill(sql, c.samples, c.dim, centres);
      const fillS = (Date.now() - fillStarted) / 1000;
      const hub = await startHub(
        loadHubConfig({}, {
          DATABASE_URL: scratch.url, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_HOST: '127.0.0.1', DATA_DIR: join(work, 'hub'),
          SAMPLES_PER_DEVICE_PER_DAY: String(c.streamed * 2), SAMPLE_QUEUE_MAX: String(c.streamed),
          // A key of its own, an open broker for the simulated fleet, no rate limit: the bench measures the store and its queries.
          HUB_API_KEY: benchKey, MQTT_AUTH: 'off', HTTP_RATE_PER_MINUTE: '100000000',
        }),
        { logLevels: process.env.HUB_LOGS ? ['log', 'warn', 'error'] : ['error'] },
      );
      try {
        // 1. Samples over MQTT while the fleet streams detections.
        process.stderr.write(`bench samples: streaming ${c.streamed} samples while ${c.agents} simulated devices send ${c.detections} detections\n`);
        const sim = spawnShelf(
          ['sim', '--agents', String(c.agents), '--frames-per-agent', String(Math.ceil(c.detections / c.agents)), '--rate', '1000',
            '--queue-size', String(Math.ceil(c.detections / c.agents)), '--mqtt-url', hub.mqttUrl, '--state-dir', join(work, 'sim'), '--site', 'bench-fleet'],
          { LOG_LEVEL: 'warn' },
        );
        let stream: { samplesPerS: number; stored: number; seconds: number; rejected: number };
        let detectionsPerS: number;
        let detectionsAlonePerS = 0;
        try {
          // Let the fleet reach its pace first.
          await waitForCount(sql, `SELECT count(*)::int AS n FROM detections`, Math.min(5000, c.detections / 4), 120_000);
          // The fleet's ingest rate alone, for 5 s, then with the sample stream beside it.
          const base0 = await count(sql, 'SELECT count(*)::int AS n FROM detections');
          const tb = Date.now();
          await new Promise((r) => setTimeout(r, 5000));
          const before = await count(sql, 'SELECT count(*)::int AS n FROM detections');
          detectionsAlonePerS = Math.round((before - base0) / ((Date.now() - tb) / 1000));
          const t0 = Date.now();
          stream = await streamSamples(hub.mqttUrl, sql, c.streamed, centres);
          const detectionsDuring = (await count(sql, 'SELECT count(*)::int AS n FROM detections')) - before;
          detectionsPerS = Math.round(detectionsDuring / ((Date.now() - t0) / 1000));
        } finally {
          await sim.stop('SIGKILL');
        }

        const metricsText = await (await fetch(`${hub.httpUrl}/metrics`, withKey)).text();
        const rejectedByReason = Object.fromEntries(
          [...metricsText.matchAll(/^shelfsight_samples_rejected_total\{reason="([a-z_]+)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]),
        );

        // 2. The queue and the neighbours, timed.
        const ids = (await sql.query<{ id: string }>(`SELECT id::text FROM samples WHERE embedding IS NOT NULL ORDER BY random() LIMIT ${c.requests + 20}`)).rows.map((r) => r.id);
        const warmStarted = Date.now();
        await (await fetch(`${hub.httpUrl}/samples/${ids[0]}/similar?limit=20`, withKey)).json();
        const indexLoadS = (Date.now() - warmStarted) / 1000;
        const listPath = '/samples?state=pending&order=margin&limit=50';
        const timings: Record<string, number[]> = { list_margin: [], similar: [] };
        for (let i = 0; i < 20; i++) {
          await (await fetch(hub.httpUrl + listPath, withKey)).json();
          await (await fetch(`${hub.httpUrl}/samples/${ids[i]}/similar?limit=20`, withKey)).json();
        }
        const progress = createProgress('requests', c.requests * 2);
        let cursor: string | null = null;
        for (let i = 0; i < c.requests; i++) {
          // Alternate first pages and deeper pages of the queue.
          const t = performance.now();
          const page = (await (await fetch(hub.httpUrl + listPath + (cursor && i % 2 === 1 ? `&cursor=${cursor}` : ''), withKey)).json()) as { nextCursor: string | null };
          timings.list_margin!.push(performance.now() - t);
          cursor = page.nextCursor;
          const t2 = performance.now();
          const res = await fetch(`${hub.httpUrl}/samples/${ids[20 + i]}/similar?limit=20`, withKey);
          await res.json();
          timings.similar!.push(performance.now() - t2);
          progress.tick(2);
        }
        progress.done();
        const q = (xs: number[], p: number) => {
          const s = [...xs].sort((a, b) => a - b);
          return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 100) / 100;
        };
        const queries = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, { p50_ms: q(v, 0.5), p95_ms: q(v, 0.95), p99_ms: q(v, 0.99) }]));
        const total = await count(sql, 'SELECT count(*)::int AS n FROM samples');
        const indexMb = Math.round((hub.app.get(SimilarIndex).bytes / 1048576) * 10) / 10;
        process.stdout.write(
          JSON.stringify({
            samples_stored: total,
            dim: c.dim,
            p95_ms: Math.max(queries.list_margin!.p95_ms, queries.similar!.p95_ms),
            p95_ms_is: 'the larger of GET /samples?state=pending&order=margin&limit=50 and GET /samples/:id/similar?limit=20',
            queries,
            samples_per_s: stream.samplesPerS,
            samples_streamed_stored: stream.stored,
            samples_not_stored: stream.rejected,
            samples_rejected_by_reason: rejectedByReason,
            detections_per_s_during_samples: detectionsPerS,
            detections_per_s_without_samples: detectionsAlonePerS,
            similar_index_mb: indexMb,
            similar_index_load_s: indexLoadS,
            fill_s: Math.round(fillS),
            method: 'sequential HTTP requests from the same machine after 20 warm-up requests; samples sent QoS 1 from 10 MQTT clients',
            cpus: cpus().length,
            loadavg_1m: Math.round(loadavg()[0]! * 100) / 100,
          }) + '\n',
        );
      } finally {
        await hub.stop();
      }
    } finally {
      await sql.end().catch(() => undefined);
      await scratch.drop().catch(() => undefined);
      rmSync(work, { recursive: true, force: true });
    }
  });
}

function randomUnit(dim: number): Float32Array {
  const v = new Float32Array(dim);
  let n = 0;
  for (let i = 0; i < dim; i++) {
    v[i] = Math.random() - 0.5;
    n += v[i]! * v[i]!;
  }
  return v.map((x) => x / Math.sqrt(n));
}

function near(centre: Float32Array, noise: number): Float32Array {
  return centre.map((x) => x + (Math.random() - 0.5) * noise);
}

function toBytes(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength); // little-endian on every platform Node runs on
}

async function count(sql: Client, query: string): Promise<number> {
  return (await sql.query<{ n: number }>(query)).rows[0]!.n;
}

async function waitForCount(sql: Client, query: string, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await count(sql, query)) < n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} rows of ${query}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The bulk: rows as the sample writer leaves them (embeddings from this process, the rest set-based in SQL). */
async function fill(sql: Client, n: number, dim: number, centres: Float32Array[]): Promise<void> {
  await sql.query(
    `INSERT INTO model_versions (version, backbone_id, backbone_checksum, labels, category_set, head_type, manifest, artifact_sha256, artifact_bytes, source, created_at)
     VALUES ('bench-1', $1, $2, '["milk","juice"]', 'bench', 'softmax', $3, $2, 1, 'demo', now())`,
    [BACKBONE, '0'.repeat(64), JSON.stringify({ backbone: { id: BACKBONE, featureDim: dim } })],
  );
  const progress = createProgress('fill samples', n);
  for (let start = 0; start < n; start += FILL_CHUNK) {
    const rows = Math.min(FILL_CHUNK, n - start);
    const embeddings = Array.from({ length: rows }, () => toBytes(near(centres[Math.floor(Math.random() * centres.length)]!, 0.05)));
    await sql.query(
      `INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, received_at, predicted_category, predicted_confidence,
         predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
         scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, priority, state, expires_at)
       SELECT 'bench-' || (g % 50), 'fill-' || g, 'low_confidence', 'f' || g, 'bench', 'A', 'A-01-1-A', now() - (g % 1000) * interval '1 minute', now(),
         CASE WHEN g % 2 = 0 THEN 'milk' ELSE 'juice' END, 0.3 + (g % 40) / 100.0, '[]'::jsonb, 'bench-1', $2, e, $3,
         lpad(to_hex(g % 1000), 64, '0'), 20000, 96, 96,
         CASE WHEN g % 2 = 0 THEN 'milk' ELSE 'juice' END, 0.3 + (g % 40) / 100.0, ((g * 7919) % 10000) / 10000.0, 0.5, '[]'::jsonb, 'bench-1',
         CASE WHEN g % 100 = 0 THEN 10 ELSE 0 END, CASE WHEN g % 10 = 0 THEN 'labelled' ELSE 'pending' END, now() + interval '14 days'
       FROM unnest($1::bytea[]) WITH ORDINALITY AS u(e, o), LATERAL (SELECT ${start}::bigint + o AS g) x`,
      [embeddings, BACKBONE, dim],
    );
    progress.tick(rows);
  }
  progress.done();
  await sql.query('ANALYZE samples');
}

/** Real samples over MQTT from 10 clients (20 KB JPEG + embedding each); how fast the hub stores them. */
async function streamSamples(
  mqttUrl: string,
  sql: Client,
  n: number,
  centres: Float32Array[],
): Promise<{ samplesPerS: number; stored: number; seconds: number; rejected: number }> {
  // A real JPEG of at most 20 KB; each sample pads it to exactly 20 KB with a unique tail after
  // the end marker (decoders ignore it), so content addressing stores every one.
  let quality = 80;
  let thumbnail = await sharp(randomBytes(96 * 96 * 3), { raw: { width: 96, height: 96, channels: 3 } }).jpeg({ quality }).toBuffer();
  while (thumbnail.length > 19_000 && quality > 10) {
    quality -= 10;
    thumbnail = await sharp(randomBytes(96 * 96 * 3), { raw: { width: 96, height: 96, channels: 3 } }).jpeg({ quality }).toBuffer();
  }
  const clients: MqttClient[] = [];
  const tag = randomBytes(3).toString('hex');
  for (let i = 0; i < 10; i++) clients.push(await connectAsync(mqttUrl, { clientId: `bench-samples-${tag}-${i}`, reconnectPeriod: 0 }));
  const progress = createProgress('samples', n);
  const started = Date.now();
  try {
    const sendOne = async (i: number) => {
      const deviceId = `bench-s-${tag}-${i % 10}`;
      const jpeg = Buffer.concat([thumbnail, randomBytes(20_000 - thumbnail.length)]);
      const sample: Sample = {
        v: SCHEMA_VERSION,
        deviceId,
        sampleId: `s-${i}:low_confidence`,
        reason: 'low_confidence',
        frameId: `s-${i}`,
        site: 'bench-stream',
        location: 'A-01-1-A',
        capturedAt: new Date().toISOString(),
        prediction: { category: 'milk', confidence: 0.4, topK: [{ category: 'milk', confidence: 0.4 }, { category: 'juice', confidence: 0.35 }], modelVersion: 'bench-1' },
        backboneId: BACKBONE,
        thumbnail: { mime: 'image/jpeg', width: 96, height: 96, data: jpeg.toString('base64') },
        bottleneck: encodeBottleneck(near(centres[i % centres.length]!, 0.05)),
        sentAt: new Date().toISOString(),
      };
      await clients[i % 10]!.publishAsync(deviceTopic(deviceId, 'samples'), JSON.stringify(sample), { qos: 1 });
    };
    // 10 in flight at a time (one per client).
    for (let i = 0; i < n; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, k) => sendOne(i + k)));
      progress.tick(Math.min(10, n - i));
    }
    const query = `SELECT count(*)::int AS n FROM samples WHERE site = 'bench-stream'`;
    // Wait until stored (or nothing moved for 30 s: the rest was refused).
    let last = -1;
    let stillSince = Date.now();
    for (;;) {
      const stored = await count(sql, query);
      if (stored >= n) break;
      if (stored !== last) {
        last = stored;
        stillSince = Date.now();
      } else if (Date.now() - stillSince > 30_000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    progress.done();
    const row = (await sql.query<{ n: number; s: number }>(`SELECT count(*)::int AS n, extract(epoch FROM max(received_at) - min(received_at))::float AS s FROM samples WHERE site = 'bench-stream'`)).rows[0]!;
    return { samplesPerS: Math.round(row.n / Math.max(row.s, 0.001)), stored: row.n, seconds: (Date.now() - started) / 1000, rejected: n - row.n };
  } finally {
    for (const cl of clients) await cl.endAsync().catch(() => undefined);
  }
}
