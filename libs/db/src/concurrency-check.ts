import { Client } from 'pg';

export interface ConcurrencyCheckOptions {
  /** Queries to run in all, spread over the clients. */
  queries: number;
  /** Clients sending small queries of different shapes at the same time (one more sends large parameters, one writes in transactions). */
  clients?: number;
  /** Size of the large client's text parameter: large enough to arrive in several TCP reads. */
  largeBytes?: number;
  /** The large client sends its large parameter in one query of every this many (small ones between, so the run stays short). */
  largeEvery?: number;
  /** Called with the number of queries done so far, now and then. */
  onProgress?: (done: number) => void;
}

export interface ConcurrencyCheckResult {
  queries: number;
  errors: number;
  wrong_rows: number;
  large_queries: number;
  transactions: number;
  seconds: number;
  queries_per_s: number;
  /** The first few failures, as `client: what`. */
  failures: string[];
}

/**
 * Several connections querying one database at the same time through the extended protocol,
 * each with a query of its own shape whose answer it can check: one sends large text
 * parameters (a Bind that arrives in pieces), one writes and reads back inside transactions,
 * the others select their own numbers back. A server that lets one connection's Bind meet
 * another's Parse answers with an error or with someone else's rows; this counts both, and
 * checks at the end that every committed transaction's row is stored. Made for
 * pglite-socket's interleaving (electric-sql/pglite issue 1046).
 */
export async function runConcurrencyCheck(url: string, opts: ConcurrencyCheckOptions): Promise<ConcurrencyCheckResult> {
  const small = opts.clients ?? 4;
  const largeBytes = opts.largeBytes ?? 200_000;
  const largeEvery = opts.largeEvery ?? 1;
  const connections = small + 2;
  const clients: Client[] = [];
  for (let i = 0; i < connections; i++) {
    const c = new Client({ connectionString: url });
    c.on('error', () => undefined); // counted through the failing query
    await c.connect();
    clients.push(c);
  }
  const failures: string[] = [];
  let errors = 0;
  let wrong = 0;
  let done = 0;
  let largeQueries = 0;
  let transactions = 0;
  const fail = (kind: 'error' | 'wrong', who: string, what: string) => {
    if (kind === 'error') errors++;
    else wrong++;
    if (failures.length < 10) failures.push(`${who}: ${what}`);
  };
  const tick = () => {
    done++;
    if (done % 5000 === 0) opts.onProgress?.(done);
  };
  const table = `concurrency_check_${process.pid}_${Date.now()}`;
  await clients[0]!.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text NOT NULL)`);
  const perClient = Math.ceil(opts.queries / connections);
  const large = 'x'.repeat(largeBytes);
  const started = process.hrtime.bigint();
  try {
    await Promise.all(
      clients.map(async (c, k) => {
        const who = k === 0 ? 'large' : k === 1 ? 'transactions' : `small-${k}`;
        for (let i = 0; i < perClient; i++) {
          try {
            if (k === 0) {
              // Large parameter (or, between large ones, a small query of the same shape).
              const big = i % largeEvery === 0;
              const text = big ? large.slice(0, largeBytes - (i % 97)) : `s${i}`;
              const r = await c.query<{ n: number; i: number }>('SELECT length($1::text) AS n, $2::int AS i', [text, i]);
              tick();
              if (big) largeQueries++;
              if (r.rows.length !== 1 || r.rows[0]!.n !== text.length || r.rows[0]!.i !== i) fail('wrong', who, `query ${i}: ${JSON.stringify(r.rows).slice(0, 200)}`);
            } else if (k === 1) {
              // A transaction of four statements: its own row, read back before the commit.
              const id = i;
              await c.query('BEGIN');
              tick();
              await c.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [id, `row-${id}`]);
              tick();
              const r = await c.query<{ v: string }>(`SELECT v FROM ${table} WHERE id = $1`, [id]);
              tick();
              await c.query('COMMIT');
              tick();
              transactions++;
              i += 3;
              if (r.rows.length !== 1 || r.rows[0]!.v !== `row-${id}`) fail('wrong', who, `transaction ${id}: ${JSON.stringify(r.rows).slice(0, 200)}`);
            } else {
              // Each small client its own shape: k columns, its own numbers back.
              const cols = Array.from({ length: k }, (_, j) => `$${j + 1}::int AS c${j}`).join(', ');
              const values = Array.from({ length: k }, (_, j) => k * 1_000_000 + i * 10 + j);
              const r = await c.query<Record<string, number>>(`SELECT ${cols}`, values);
              tick();
              const row = r.rows[0];
              if (r.rows.length !== 1 || Object.keys(row ?? {}).length !== k || values.some((v, j) => row![`c${j}`] !== v)) {
                fail('wrong', who, `query ${i}: ${JSON.stringify(r.rows).slice(0, 200)}`);
              }
            }
          } catch (err) {
            tick();
            fail('error', who, `query ${i}: ${(err as Error).message}`);
            if (k === 1) await c.query('ROLLBACK').catch(() => undefined);
          }
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // Every committed transaction's row is there, once.
    const stored = (await clients[1]!.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
    if (stored !== transactions) fail('wrong', 'transactions', `${stored} rows stored for ${transactions} committed transactions`);
    return {
      queries: done,
      errors,
      wrong_rows: wrong,
      large_queries: largeQueries,
      transactions,
      seconds: Math.round(seconds * 10) / 10,
      queries_per_s: Math.round(done / seconds),
      failures,
    };
  } finally {
    await clients[0]!.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
