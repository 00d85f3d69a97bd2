/**
 * Benchmark smoke (`npm run test:bench-smoke`): every `shelf bench …` at a size that runs in
 * seconds, one after another, so that a broken benchmark fails the build instead of rotting
 * unnoticed. Each must exit 0 with one JSON object as its last stdout line. A benchmark
 * `shelf bench --help` lists without a smoke size here fails the run too.
 * Two run at a time (their time is mostly process, hub and database start-up);
 * BENCH_SMOKE_PARALLEL changes that, BENCH_SMOKE_ONLY=ingest,fleet runs a subset.
 * The benchmarks with a database option use the machine's PostgreSQL (DATABASE_URL, default
 * 127.0.0.1:5432 as in CI): a scratch database starts faster than the embedded one.
 * Last line: one JSON object (per bench: ok, seconds).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnShelf } from '@shelfsight/cli';
import { DEFAULT_BACKBONE, DEMO_CATEGORIES, renderShelfPhoto } from '@shelfsight/vision';

const POSTGRES = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const PARALLEL = Math.max(1, Number(process.env.BENCH_SMOKE_PARALLEL ?? 2));

/** Each benchmark's smoke size (`work`: a scratch folder with rendered photos in images/ and a class-folder dataset in dataset/). */
const SMOKE: Record<string, (work: string) => string[]> = {
  agent: (work) => ['--images', join(work, 'images'), '--frames', '10', '--runtime', 'plain'],
  console: () => ['--loads', '1', '--frames', '50'],
  fleet: () => ['--smoke'],
  infer: () => ['--frames', '2', '--batch-frames', '8', '--repeat', '1', '--workers', '1'],
  ingest: () => ['--agents', '4', '--detections', '2000', '--database-url', POSTGRES],
  inventory: () => ['--locations', '100', '--detections', '5000', '--requests', '10'],
  retrain: (work) => ['--data', join(work, 'dataset'), '--backbone', DEFAULT_BACKBONE, '--samples', '20', '--epochs', '1', '--agents', '2', '--rate', '5', '--repeat', '1', '--baseline-s', '2', '--database-url', POSTGRES],
  rollout: () => ['--agents', '10', '--processes', '1', '--timeout-s', '120'],
  samples: () => ['--samples', '500', '--streamed', '20', '--dim', '64', '--agents', '2', '--detections', '1000', '--requests', '5'],
  train: () => ['--rows', '200', '--dim', '64', '--classes', '4', '--epochs', '1', '--ensemble', '1'],
};

interface Outcome {
  ok: boolean;
  seconds: number;
  error?: string;
}

async function listedBenches(): Promise<string[]> {
  const help = spawnShelf(['bench', '--help'], {});
  await help.exited;
  return [...help.stdout().matchAll(/^ {2}([a-z][\w-]*) \[options\]/gm)].map((m) => m[1]!);
}

async function main(): Promise<void> {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-bench-smoke-'));
  const outcomes: Record<string, Outcome> = {};
  try {
    const listed = await listedBenches();
    if (listed.length === 0) throw new Error('`shelf bench --help` listed no benchmarks');
    const only = process.env.BENCH_SMOKE_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
    for (const name of listed) if (!SMOKE[name]) outcomes[name] = { ok: false, seconds: 0, error: 'no smoke size in test/bench-smoke/bench-smoke.ts' };
    // Photos for the benchmarks that read images: a few rendered shelf photos, and a class-folder dataset of them.
    mkdirSync(join(work, 'images'));
    for (const [c, category] of DEMO_CATEGORIES.entries()) {
      mkdirSync(join(work, 'dataset', category), { recursive: true });
      for (let i = 0; i < 4; i++) {
        const photo = await renderShelfPhoto(category, c * 10 + i);
        writeFileSync(join(work, 'dataset', category, `${i}.jpg`), photo);
        if (i < 3) writeFileSync(join(work, 'images', `${category}-${i}.jpg`), photo);
      }
    }
    const queue = listed.filter((n) => SMOKE[n] && (!only || only.includes(n)));
    const runOne = async (name: string): Promise<void> => {
      const args = ['bench', name, ...SMOKE[name]!(work)];
      process.stderr.write(`bench-smoke: shelf ${args.join(' ')}\n`);
      const t0 = Date.now();
      const bench = spawnShelf(args, {});
      const code = await bench.exited;
      const seconds = Math.round((Date.now() - t0) / 100) / 10;
      const last = bench.stdout().trim().split('\n').pop() ?? '';
      const error = code !== 0 ? `exit code ${code}` : !isJsonObject(last) ? `last stdout line is not one JSON object: ${last.slice(0, 200)}` : undefined;
      outcomes[name] = { ok: error === undefined, seconds, ...(error ? { error } : {}) };
      process.stderr.write(`bench-smoke: ${name} ${error ? `FAILED (${error})` : 'ok'} in ${seconds} s\n`);
      if (error) process.stderr.write(`${bench.stderr().slice(-3000)}\n`);
    };
    await Promise.all(
      Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
        for (let name = queue.shift(); name !== undefined; name = queue.shift()) await runOne(name);
      }),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const ok = Object.values(outcomes).every((o) => o.ok);
  process.stdout.write(`${JSON.stringify({ ok, seconds: Math.round((Date.now() - started) / 1000), benches: outcomes })}\n`);
  process.exitCode = ok ? 0 : 1;
}

function isJsonObject(line: string): boolean {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-smoke: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
