import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startSimulatedFleet, type SimulatedFleet } from '@shelfsight/agent';
import { withTimeout } from '@shelfsight/common';
import { metricSum } from '@shelfsight/cli';
import { eventually, hubFetch, startTestHub, type TestHub } from './support/test-hub';
import { hasExternalPostgres } from './support/services';

const d = hasExternalPostgres() ? describe : describe.skip;

/**
 * A hub over capacity (its database stalls while a fleet sends) defers what does not fit
 * in INGEST_MAX_PENDING with a retry-after instead of leaving it unacknowledged; the
 * devices keep the deferred detections, wait, and send them again; once the database is
 * back everything is stored exactly once.
 */
d('ingest flow control (postgres + aedes)', () => {
  const AGENTS = 4;
  const FRAMES = 120;
  const RETRY_AFTER_MS = 300;
  let sut: TestHub;
  let sql: Client;
  let fleet: SimulatedFleet | undefined;
  const site = `flow-${randomBytes(3).toString('hex')}`;
  const metric = async (name: string) => metricSum(await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text(), name);

  beforeAll(async () => {
    sut = await startTestHub('postgres', 'aedes', { INGEST_MAX_PENDING: '60', INGEST_BATCH_ROWS: '20', INGEST_RETRY_AFTER_MS: String(RETRY_AFTER_MS) });
    sql = new Client({ connectionString: sut.hub.databaseUrl });
    await sql.connect();
  });

  afterAll(async () => {
    await fleet?.stop();
    await withTimeout(sql?.end() ?? Promise.resolve(), 5000);
    await sut?.stop();
  });

  it('tells devices over capacity to back off, and stores every detection once when the database is back', async () => {
    const storedBefore = await metric('shelfsight_detections_stored_total');
    // The database stalls: no detection can be inserted while this transaction holds the table.
    await sql.query('BEGIN');
    await sql.query('LOCK TABLE detections IN SHARE MODE');
    const stalledAt = Date.now();
    fleet = await startSimulatedFleet({
      agents: AGENTS,
      rate: 100,
      framesPerAgent: FRAMES,
      mqttUrl: sut.hub.mqttUrl,
      site,
      deviceIdPrefix: `${site}-`,
      stateDir: mkdtempSync(join(tmpdir(), 'shelfsight-flow-')),
      // Timeouts far off: what the devices do here is the hub's word, not their own timers.
      agent: { batchSize: 10, linkLingerMs: 20, maxInFlight: 400, ackTimeoutMs: 30_000, concurrency: 8, queueSize: 200, heartbeatMs: 60_000 },
    });
    await eventually(async () => ((await metric('shelfsight_detections_deferred_total')) > 0 ? true : undefined), 20_000, 'a deferral');
    // Held a while longer: deferred devices come back after the retry-after, are deferred again, and so on.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await metric('shelfsight_ingest_pending')).toBeLessThanOrEqual(60);
    await sql.query('COMMIT');
    const stalledMs = Date.now() - stalledAt;

    await fleet.idle(60_000);
    const { agents, totals } = fleet.stats();
    expect(totals.pending).toBe(0);
    expect(totals.dropped).toBe(0);
    // Every device heard "back off" for detections it then delivered: none were lost.
    const deferredToDevices = agents.reduce((n, a) => n + a.link.detectionsDeferred, 0);
    expect(deferredToDevices).toBeGreaterThan(0);
    expect(agents.some((a) => a.link.windowDecreases > 0)).toBe(true);
    // They honoured the retry-after: each device came back at most once per 0.75 x retry-after
    // (its least jitter) while the database stalled, not as fast as it could publish.
    const deferredBatches = await metric('shelfsight_batches_deferred_total');
    expect(deferredBatches).toBeLessThanOrEqual(AGENTS * (stalledMs / (0.75 * RETRY_AFTER_MS) + 2) * 2);
    // Stored exactly once: rows, the stored counter and what the devices emitted agree.
    const rows = await sql.query<{ n: number; distinct_keys: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT (device_id, epoch, seq))::int AS distinct_keys FROM detections WHERE site = $1`,
      [site],
    );
    expect(rows.rows[0]).toEqual({ n: AGENTS * FRAMES, distinct_keys: AGENTS * FRAMES });
    expect(totals.emitted).toBe(AGENTS * FRAMES);
    expect((await metric('shelfsight_detections_stored_total')) - storedBefore).toBe(AGENTS * FRAMES);
    await fleet.stop();
    fleet = undefined;
  }, 120_000);
});
