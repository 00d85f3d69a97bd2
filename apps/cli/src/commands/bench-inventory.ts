import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Client } from 'pg';
import { z } from 'zod';
import { cfg, createProgress, loadConfig } from '@shelfsight/common';
import { applyMigrations } from '@shelfsight/db';
import { loadHubConfig, startHub } from '@shelfsight/hub';
import { createScratchDatabase, SCRATCH_DATABASE_OPTION } from '../bench/scratch-database';
import { addConfigOptions, flagsFrom } from '../options';

const SPEC = {
  locations: { env: 'BENCH_LOCATIONS', flag: 'locations', description: 'locations with a current state', schema: z.coerce.number().int().min(1).default(10_000) },
  detections: { env: 'BENCH_DETECTIONS', flag: 'detections', description: 'raw detections stored', schema: z.coerce.number().int().min(1).default(10_000_000) },
  requests: { env: 'BENCH_REQUESTS', flag: 'requests', description: 'timed requests per query', schema: cfg.int(300, 1) },
  databaseUrl: SCRATCH_DATABASE_OPTION,
} as const;

const CATEGORIES = ['milk', 'juice', 'yoghurt', 'apples', 'bananas', 'oranges', 'pears', 'tomatoes', 'peppers', 'melons'];
const CHUNK = 1_000_000;

/**
 * `shelf bench inventory`: fill a scratch database with N locations and M raw
 * detections (set-based SQL, as the ingest writer would have left them), start a hub
 * on it and time GET /inventory, sequentially, from this process.
 */
export function registerBenchInventory(bench: Command): void {
  const cmd = bench
    .command('inventory')
    .description('Manager API latency: GET /inventory p50/p95/p99 over a database of --locations and --detections');
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const scratch = await createScratchDatabase(c.databaseUrl, 'shelfsight_bench');
    const dataDir = mkdtempSync(join(tmpdir(), 'shelfsight-bench-inv-'));
    const benchKey = randomBytes(24).toString('base64url');
    const withKey = { headers: { 'X-API-Key': benchKey } };
    const sql = new Client({ connectionString: scratch.url });
    try {
      await applyMigrations(scratch.url);
      await sql.connect();
      const fillStarted = Date.now();
      await fill(sql, c.locations, c.detections);
      const fillS = (Date.now() - fillStarted) / 1000;
      const hub = await startHub(
        // A key of its own, and no rate limit: the bench measures queries, not the limiter.
        loadHubConfig({}, { DATABASE_URL: scratch.url, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_HOST: '127.0.0.1', DATA_DIR: dataDir, HUB_API_KEY: benchKey, MQTT_AUTH: 'off', HTTP_RATE_PER_MINUTE: '100000000' }),
        { logLevels: ['error'] },
      );
      try {
        const queries = {
          all: '/inventory',
          site_zone: '/inventory?site=bench&zone=C',
          include_stale_min_conf: '/inventory?includeStale=true&minConfidence=0.8',
        };
        const results: Record<string, { p50_ms: number; p95_ms: number; p99_ms: number }> = {};
        const progress = createProgress('requests', c.requests * Object.keys(queries).length);
        for (const [name, path] of Object.entries(queries)) {
          for (let i = 0; i < 20; i++) await (await fetch(hub.httpUrl + path, withKey)).json(); // warm-up
          const times: number[] = [];
          for (let i = 0; i < c.requests; i++) {
            const t = performance.now();
            const res = await fetch(hub.httpUrl + path, withKey);
            await res.json();
            times.push(performance.now() - t);
            progress.tick();
          }
          times.sort((a, b) => a - b);
          const q = (p: number) => Math.round(times[Math.min(times.length - 1, Math.floor(p * times.length))]! * 100) / 100;
          results[name] = { p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99) };
        }
        progress.done();
        const sample = (await (await fetch(hub.httpUrl + '/inventory', withKey)).json()) as { totalLocations: number };
        process.stdout.write(
          JSON.stringify({
            locations: c.locations,
            detections: c.detections,
            counted_locations: sample.totalLocations,
            p50_ms: results.all!.p50_ms,
            p95_ms: results.all!.p95_ms,
            p99_ms: results.all!.p99_ms,
            queries: results,
            fill_s: Math.round(fillS),
            method: 'sequential HTTP requests from the same machine, after 20 warm-up requests per query',
            cpus: cpus().length,
          }) + '\n',
        );
      } finally {
        await hub.stop();
      }
    } finally {
      await sql.end().catch(() => undefined);
      await scratch.drop().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

/** Raw detections spread over the locations and the last 30 days, then state, locations and history derived from them. */
async function fill(sql: Client, locations: number, detections: number): Promise<void> {
  const cats = `ARRAY[${CATEGORIES.map((x) => `'${x}'`).join(',')}]`;
  const progress = createProgress('fill detections', detections);
  for (let start = 1; start <= detections; start += CHUNK) {
    const end = Math.min(detections, start + CHUNK - 1);
    await sql.query(`
      INSERT INTO detections (device_id, seq, frame_id, site, zone, location, captured_at, received_at, category, confidence, top_k, model_version, latency_ms)
      SELECT 'bench-' || (g % 50), g, 'f' || g, 'bench', chr(65 + (l % 6)),
             chr(65 + (l % 6)) || '-' || lpad(((l / 6) % 100)::text, 2, '0') || '-' || ((l / 600) % 10) || '-' || chr(65 + (l / 6000) % 26),
             now() - interval '30 days' + (g::float / ${detections}) * interval '30 days',
             now() - interval '30 days' + (g::float / ${detections}) * interval '30 days',
             (${cats})[1 + (g * 7 + l) % ${CATEGORIES.length}], 0.5 + ((g * 13) % 50) / 100.0,
             '[]'::jsonb, 'bench-model', 20
      FROM (SELECT g, ((g * 7919) % ${locations})::int AS l FROM generate_series(${start}::bigint, ${end}::bigint) g) x`);
    progress.tick(end - start + 1);
  }
  progress.done();
  process.stderr.write('fill: deriving locations, state and history\n');
  await sql.query(`INSERT INTO sites (id) VALUES ('bench') ON CONFLICT DO NOTHING`);
  await sql.query(`INSERT INTO zones (site, code) SELECT DISTINCT site, zone FROM detections ON CONFLICT DO NOTHING`);
  await sql.query(`
    INSERT INTO locations (site, code, zone, first_seen_at, last_observed_at)
    SELECT site, location, min(zone), min(captured_at), max(captured_at) FROM detections GROUP BY site, location`);
  await sql.query(`
    INSERT INTO location_state (site, location, zone, category, confidence, captured_at, device_id, seq, detection_id)
    SELECT DISTINCT ON (site, location) site, location, zone, category, confidence, captured_at, device_id, seq, id
    FROM detections WHERE confidence >= 0.5 ORDER BY site, location, captured_at DESC, device_id DESC, seq DESC`);
  await sql.query(`
    INSERT INTO inventory_deltas (site, zone, category, hour, delta)
    SELECT site, zone, category, date_trunc('hour', captured_at), count(*) FROM location_state GROUP BY 1, 2, 3, 4`);
  await sql.query('ANALYZE');
}
