/**
 * The embedded database under concurrency (`npm run test:embedded-db`, in CI): the hub's
 * embedded PostgreSQL (PGlite behind its socket server) answers several clients at once —
 * one sending 200 KB text parameters, one writing and reading back inside transactions, the
 * others selecting their own numbers back, each with a query of its own shape — through the
 * extended protocol, 100,000 queries in all (EMBEDDED_DB_QUERIES overrides). pglite-socket's
 * own queue let one connection's Bind meet another's Parse (electric-sql/pglite issue 1046):
 * an error or another query's rows. Last line one JSON object (queries, errors, wrong_rows,
 * large_queries, transactions, seconds, queries_per_s); exit code 1 unless every query was
 * answered without an error and with its own rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConcurrencyCheck, startEmbeddedPostgres } from '@shelfsight/db';

const QUERIES = Number(process.env.EMBEDDED_DB_QUERIES ?? 100_000);
/** One in this many of the large client's queries carries 200 KB (all of them would make the run minutes long). */
const LARGE_EVERY = Number(process.env.EMBEDDED_DB_LARGE_EVERY ?? 10);

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'shelfsight-embedded-db-'));
  const db = await startEmbeddedPostgres({ dataDir: dir });
  try {
    const started = Date.now();
    const result = await runConcurrencyCheck(db.url, {
      queries: QUERIES,
      largeEvery: LARGE_EVERY,
      onProgress: (done) => process.stderr.write(`[embedded-db +${((Date.now() - started) / 1000).toFixed(1)}s] ${done} queries\n`),
    });
    for (const f of result.failures) process.stderr.write(`failure: ${f}\n`);
    const { failures: _failures, ...summary } = result;
    process.stdout.write(`${JSON.stringify({ database: 'embedded', ...summary })}\n`);
    return result.errors === 0 && result.wrong_rows === 0 && result.queries >= QUERIES ? 0 : 1;
  } finally {
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`embedded-db: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
