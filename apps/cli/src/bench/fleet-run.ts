import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { z } from 'zod';
import { metricSum } from '@shelfsight/common';
import { DatabaseBackendsCpu, machineInfo, per1000, processCpuSeconds } from './cpu';
import { fleetWindowsSvg, overloadVerdict, percentile, summarizeWindows, DEFAULT_OVERLOAD_LIMITS, type FleetWindow, type OverloadLimits } from './fleet-windows';
import { freePort, processMemoryMb, spawnShelf, waitForHttp, type ShelfProcess } from './processes';
import { cpuProfileByPackage, cpuProfileTop } from './profile';
import { createScratchDatabase } from './scratch-database';

/**
 * `shelf bench fleet`, the run: a hub process on a scratch PostgreSQL database (its embedded
 * broker, or an external one), the fleet in child processes (`shelf bench fleet-devices`,
 * real agent outbox + link, stand-in classifier), a light `GET /inventory` prober, and the
 * figures of every window. With `overload`, the hub's capacity is measured first (or given)
 * and the fleet offers that multiple of it.
 */

export interface FleetRunOptions {
  devices: number;
  /** Frames per second per device (ignored with `overload`). */
  rate: number;
  durationS: number;
  windowS: number;
  processes: number;
  /** Offer this multiple of the capacity (measured first unless `capacity` is given). */
  overload?: number;
  capacity?: number;
  /** Detections the capacity phase drains (spread over the devices). */
  capacityDetections: number;
  databaseUrl: string;
  mqttUrl?: string;
  /** Agent link settings for the fleet; unset = the agent's defaults. */
  batchSize?: number;
  maxInFlight?: number;
  drainTimeoutS: number;
  proberIntervalMs: number;
  /**
   * Emulate a slower database: every detection row the hub stores waits this long in a trigger
   * (pg_sleep: no CPU). The hub's capacity is then set by the database, so a small fleet can
   * offer a multiple of it on a small shared machine without its own CPU deciding the result.
   */
  dbRowDelayMs?: number;
  /** node --cpu-prof of the hub process into this file (.cpuprofile). */
  profile?: string;
  svg?: string;
  /** Write the hub's log (stdout and stderr, the last MB of each) here at the end. */
  hubLog?: string;
  limits?: OverloadLimits;
  /** Progress lines (stderr). */
  log: (line: string) => void;
  /** Aborted (SIGINT/SIGTERM): stop offering, end the drain, report what was measured, clean up. */
  stop?: AbortSignal;
}

/** What the parent hands each fleet child (a JSON file). */
export const FleetDevicesPlanSchema = z.object({
  prefix: z.string().min(1),
  agents: z.number().int().min(1),
  rate: z.number().positive(),
  framesPerAgent: z.number().int().min(1),
  mqttUrl: z.string(),
  stateDir: z.string(),
  site: z.string(),
  batchSize: z.number().int().min(1).optional(),
  maxInFlight: z.number().int().min(1).optional(),
  drainTimeoutS: z.number().positive(),
  statsEveryMs: z.number().int().min(100),
});
export type FleetDevicesPlan = z.infer<typeof FleetDevicesPlanSchema>;

/** One stats line of a fleet child (cumulative counts). */
export const FleetDevicesStatsSchema = z.object({
  kind: z.enum(['ready', 'stats', 'final']),
  at: z.number(),
  emitted: z.number(),
  detected: z.number(),
  dropped: z.number(),
  sent: z.number(),
  /** Detection messages (MQTT publishes) sent, retransmissions included. */
  messages: z.number().default(0),
  retransmits: z.number(),
  acked: z.number(),
  unacked: z.number(),
  in_flight: z.number(),
  connected: z.number(),
  cpu_s: z.number(),
});
export type FleetDevicesStats = z.infer<typeof FleetDevicesStatsSchema>;

/** Total in flight across the fleet while measuring capacity: well under the hub's INGEST_MAX_PENDING (50,000), so nothing is refused. */
const CAPACITY_WINDOW_TOTAL = 20_000;
/** Frames per second per device while the capacity phase fills its outboxes (fast: the drain, not the sources, sets the pace). */
const CAPACITY_FILL_RATE = 1000;

interface FleetChild {
  proc: ShelfProcess;
  latest?: FleetDevicesStats;
  final?: FleetDevicesStats;
  ready: boolean;
}

interface Sample {
  at: number;
  /** Frames the sources emitted so far (the run ends when all are). */
  emitted: number;
  /** Detections that entered the devices' outboxes so far: what the fleet offers the hub. */
  detected: number;
  sent: number;
  messages: number;
  retransmits: number;
  unacked: number;
  hubRssMb?: number;
  pending?: number;
  stored?: number;
  /** The hub's other bounded buffers (bytes pending commit, its MQTT intake queue, the embedded broker's backlog toward it). */
  pendingBytes?: number;
  hubQueueBytes?: number;
  brokerBacklog?: number;
  deferred?: number;
}

export async function runFleetBench(o: FleetRunOptions): Promise<Record<string, unknown>> {
  const machineBefore = machineInfo();
  const run = randomBytes(3).toString('hex');
  const site = `fleet-${run}`;
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-bench-fleet-'));
  const scratch = await createScratchDatabase(o.databaseUrl, 'shelfsight_bench_fleet');
  const apiKey = randomBytes(24).toString('base64url');
  const metricsToken = randomBytes(24).toString('base64url');
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const hubUrl = `http://127.0.0.1:${httpPort}`;
  const mqttUrl = o.mqttUrl ?? `mqtt://127.0.0.1:${mqttPort}`;
  // An open broker with no per-device publish limit: the bench measures ingest, not device authentication.
  const hubEnv: NodeJS.ProcessEnv = {
    DATA_DIR: join(work, 'hub'), DATABASE_URL: scratch.url, MQTT_URL: o.mqttUrl ?? '', HTTP_HOST: '127.0.0.1', MQTT_HOST: '127.0.0.1',
    HTTP_PORT: String(httpPort), MQTT_PORT: String(mqttPort), HUB_API_KEY: apiKey, METRICS_TOKEN: metricsToken, MQTT_AUTH: 'off',
    MQTT_RATE_PER_S: '1000000', MQTT_BURST: '1000000', HTTP_RATE_PER_MINUTE: '1000000', TRAINING_WORKER: 'off', LOG_LEVEL: 'warn',
  };
  // With an emulated slow database, transactions of at most ~0.25 s (the default 2,000 rows would take seconds each and
  // commits would come in lumps bigger than a window); the capacity (rows per second) does not depend on the batch size.
  if (o.dbRowDelayMs) hubEnv.INGEST_BATCH_ROWS = String(Math.max(10, Math.floor(250 / o.dbRowDelayMs)));
  const profileArgs = o.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(o.profile, '..')}`, `--cpu-prof-name=${o.profile.split('/').pop()}`] : [];
  const hub = spawnShelf(['hub'], hubEnv, undefined, profileArgs);
  const children: FleetChild[] = [];
  let sql: Client | undefined;
  try {
    await waitForHttp(`${hubUrl}/health`, 180_000, () =>
      hub.child.exitCode !== null ? `hub exited with ${hub.child.exitCode} before it was up: ${hub.stderr().slice(-2000).trim()}` : undefined,
    );
    sql = new Client({ connectionString: scratch.url });
    await sql.connect();
    const db = sql;
    const metrics = async (): Promise<string | undefined> => {
      try {
        const res = await fetch(`${hubUrl}/metrics`, { headers: { Authorization: `Bearer ${metricsToken}` }, signal: AbortSignal.timeout(5000) });
        return res.ok ? await res.text() : undefined;
      } catch {
        return undefined;
      }
    };

    if (o.dbRowDelayMs) {
      // After the hub's migrations (it is up): AFTER ROW fires for rows actually inserted, not for ignored duplicates.
      await db.query(`CREATE FUNCTION bench_slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${o.dbRowDelayMs / 1000}); RETURN NULL; END $$`);
      await db.query('CREATE TRIGGER bench_slow_row AFTER INSERT ON detections FOR EACH ROW EXECUTE FUNCTION bench_slow_row()');
      o.log(`bench fleet: the database waits ${o.dbRowDelayMs} ms per stored detection (emulated slow database)`);
    }

    let capacity: { per_s: number; measured: boolean; detections?: number; seconds?: number } | undefined;
    let rate = o.rate;
    if (o.overload !== undefined) {
      capacity = o.capacity !== undefined ? { per_s: o.capacity, measured: false } : await measureCapacity(o, mqttUrl, site, work, run);
      rate = (o.overload * capacity.per_s) / o.devices;
      o.log(`bench fleet: capacity ${Math.round(capacity.per_s)} detections/s${capacity.measured ? ' (measured)' : ' (given)'}; offering ${o.overload}x = ${Math.round(rate * o.devices)}/s (${rate.toFixed(3)} frames/s per device)`);
      // The capacity phase's leftovers (pending commits) out of the way first.
      await until(async () => metricSum((await metrics()) ?? '', 'shelfsight_ingest_pending') === 0, 60_000).catch(() =>
        o.log('bench fleet: the capacity phase still has detections pending after 60 s; starting anyway'),
      );
    }

    // The fleet for the measured run.
    const framesPerAgent = Math.max(1, Math.round(rate * o.durationS));
    const prefix = `fl-${run}-`;
    const started = startFleet(o, { prefix, framesPerAgent, rate, mqttUrl, site, work: join(work, 'fleet') });
    children.push(...started);
    o.log(`bench fleet: starting ${o.devices} devices at ${round3(rate)} frames/s in ${started.length} processes (${framesPerAgent} frames each)`);
    await until(async () => {
      failIfExited(children, 'before it was ready');
      return children.every((c) => c.ready);
    }, 600_000);
    const expected = framesPerAgent * o.devices;

    // The measured run: sample every second, a window every windowS.
    const dbCpu = new DatabaseBackendsCpu(db, scratch.url);
    await dbCpu.start();
    const startText = (await metrics()) ?? '';
    const storedAtStart = metricSum(startText, 'shelfsight_detections_stored_total');
    const deferredAtStart = metricSum(startText, 'shelfsight_detections_deferred_total');
    const t0 = Date.now();
    const cpu0 = { hub: processCpuSeconds(hub.child.pid) ?? 0, fleet: children.map((c) => processCpuSeconds(c.proc.child.pid) ?? 0) };
    const prober = startProber(`${hubUrl}/inventory?site=${encodeURIComponent(site)}`, apiKey, o.proberIntervalMs);
    const samples: Sample[] = [];
    const atStart: Sample = { ...sumStats(children.map((c) => c.latest)), at: t0, stored: storedAtStart, deferred: deferredAtStart };
    const fleetTotals = () => sumStats(children.map((c) => c.final ?? c.latest));
    let lastWindowAt = t0;
    let windowFrom: Sample | undefined;
    for (;;) {
      await sleep(1000 - ((Date.now() - t0) % 1000));
      failIfExited(children, 'during the run', true);
      const text = await metrics();
      const f = fleetTotals();
      const s: Sample = {
        at: Date.now(),
        emitted: f.emitted,
        detected: f.detected,
        sent: f.sent,
        messages: f.messages,
        retransmits: f.retransmits,
        unacked: f.unacked,
        hubRssMb: processMemoryMb(hub.child.pid, 'VmRSS'),
        pending: text === undefined ? undefined : metricSum(text, 'shelfsight_ingest_pending'),
        pendingBytes: text === undefined ? undefined : metricSum(text, 'shelfsight_ingest_pending_bytes'),
        hubQueueBytes: text === undefined ? undefined : metricSum(text, 'shelfsight_mqtt_hub_queue_bytes'),
        brokerBacklog: text === undefined ? undefined : metricSum(text, 'shelfsight_mqtt_broker_backlog'),
        deferred: text === undefined ? (samples[samples.length - 1]?.deferred ?? deferredAtStart) : metricSum(text, 'shelfsight_detections_deferred_total'),
        // A scrape that failed (hub too busy to answer in 5 s) carries the last reading forward.
        stored: text === undefined ? (samples[samples.length - 1]?.stored ?? storedAtStart) : metricSum(text, 'shelfsight_detections_stored_total'),
      };
      samples.push(s);
      await dbCpu.sample().catch(() => undefined);
      windowFrom ??= s;
      const done = f.emitted >= expected;
      if (s.at - lastWindowAt >= o.windowS * 1000 - 500 || done) {
        const secs = (s.at - lastWindowAt) / 1000;
        const inWindow = samples.filter((x) => x.at > lastWindowAt);
        const stored = s.stored !== undefined && windowFrom.stored !== undefined ? s.stored - windowFrom.stored : undefined;
        o.log(
          `bench fleet: ${((s.at - t0) / 1000).toFixed(0)}s offered ${Math.round((s.detected - windowFrom.detected) / secs)}/s stored ${stored === undefined ? '?' : Math.round(stored / secs)}/s ` +
            `retransmitted ${Math.round((s.retransmits - windowFrom.retransmits) / secs)}/s hub RSS ${maxOf(inWindow.map((x) => x.hubRssMb)) ?? '?'} MB pending ${maxOf(inWindow.map((x) => x.pending)) ?? '?'} ` +
            `fleet unacked ${s.unacked} inventory p95 ${prober.p95Since(lastWindowAt) ?? '?'} ms (${Math.round((100 * s.emitted) / expected)}% offered)`,
        );
        lastWindowAt = s.at;
        windowFrom = s;
      }
      if (done || o.stop?.aborted || Date.now() - t0 > (o.durationS * 2 + 60) * 1000) break;
    }
    const tEnd = Date.now();
    await dbCpu.sample().catch(() => undefined);
    const cpu = {
      hub: (processCpuSeconds(hub.child.pid) ?? cpu0.hub) - cpu0.hub,
      fleet: children.reduce((n, c, i) => n + ((processCpuSeconds(c.proc.child.pid) ?? cpu0.fleet[i]!) - cpu0.fleet[i]!), 0),
      database: dbCpu.total(),
    };
    const probes = prober.stop();
    const rssAtEnd = processMemoryMb(hub.child.pid, 'VmRSS');

    // Drain: the sources are done; every child exits once its outbox is acknowledged.
    o.log(`bench fleet: offered everything (${Math.round((tEnd - t0) / 1000)} s); draining (up to ${o.drainTimeoutS} s)`);
    const drainFrom = Date.now();
    let lastDrainLog = 0;
    const drained = await until(async () => {
      if (Date.now() - lastDrainLog > 5000) {
        lastDrainLog = Date.now();
        o.log(`bench fleet: draining, ${fleetTotals().unacked} unacknowledged`);
      }
      return children.every((c) => c.proc.child.exitCode !== null) || o.stop?.aborted === true;
    }, o.drainTimeoutS * 1000).then(
      () => true,
      () => false,
    );
    const drainS = (Date.now() - drainFrom) / 1000;
    const allExited = children.every((c) => c.proc.child.exitCode === 0);
    await Promise.all(children.map((c) => stopChild(c.proc)));
    const final = sumStats(children.map((c) => c.final ?? c.latest));

    // Per window, from the database: what was stored and how long after capture.
    const stored = await db.query<{ w: number; n: number; p95: number | null }>(
      `SELECT floor(extract(epoch FROM received_at - to_timestamp($1 / 1000.0)) / $2)::int AS w, count(*)::int AS n,
              percentile_disc(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - captured_at) * 1000) AS p95
         FROM detections WHERE site = $3 AND received_at >= to_timestamp($1 / 1000.0) AND received_at < to_timestamp($4 / 1000.0)
        GROUP BY 1`,
      [t0, o.windowS, site, tEnd],
    );
    const byWindow = new Map(stored.rows.map((r) => [r.w, r]));
    const windows = buildWindows(samples, atStart, tEnd, o.windowS, byWindow, probes);
    const totals = (
      await db.query<{ stored: number; distinct_frames: number; in_run: number }>(
        `SELECT count(*)::int AS stored, count(DISTINCT (device_id, frame_id))::int AS distinct_frames,
                (count(*) FILTER (WHERE received_at >= to_timestamp($2 / 1000.0) AND received_at < to_timestamp($3 / 1000.0)))::int AS in_run
           FROM detections WHERE site = $1`,
        [site, t0, tEnd],
      )
    ).rows[0]!;
    const summary = summarizeWindows(windows);
    const verdict = capacity ? overloadVerdict(windows, capacity.per_s, o.limits ?? DEFAULT_OVERLOAD_LIMITS) : undefined;
    if (o.svg) {
      const title = `${o.devices} devices, ${o.overload ? `${o.overload}x capacity` : `${round3(rate)} frames/s each`}: per ${o.windowS} s window`;
      writeFileSync(o.svg, fleetWindowsSvg(title, windows, capacity?.per_s));
      o.log(`bench fleet: chart in ${o.svg}`);
    }
    await db.end().catch(() => undefined);
    sql = undefined;
    const hubPeakRssMb = hub.peakRssMb();
    // A hub stuck with a full writer can take minutes to stop; with --profile it must exit by itself to write the profile.
    await stopChild(hub, o.profile ? 120_000 : 30_000);
    const profiled = o.profile
      ? await Promise.all([cpuProfileByPackage(o.profile, 15), cpuProfileTop(o.profile, 15)]).then(
          ([byPackage, top]) => ({ by_package: byPackage, top_self_ms: top }),
          (err: unknown) => ({ error: (err as Error).message }),
        )
      : undefined;
    return {
      devices: o.devices,
      rate_per_device: round3(rate),
      offered_per_s: Math.round(rate * o.devices),
      overload: o.overload ?? null,
      capacity: capacity ?? null,
      duration_s: round1((tEnd - t0) / 1000),
      window_s: o.windowS,
      median: summary.median,
      worst: summary.worst,
      worst_window: summary.worst_window,
      verdict: verdict ?? null,
      totals: {
        emitted: final.emitted,
        detected: final.detected,
        dropped_by_devices: final.dropped,
        sent: final.sent,
        messages: final.messages,
        detections_per_message: final.messages > 0 ? round1(final.sent / final.messages) : null,
        retransmitted: final.retransmits,
        retransmitted_share: final.sent > 0 ? round3(final.retransmits / final.sent) : null,
        stored: totals.distinct_frames,
        lost: drained && allExited ? final.detected - totals.distinct_frames : null,
        double_counted: totals.stored - totals.distinct_frames,
        unacked_at_end: final.unacked,
        drained: drained && allExited,
        drain_s: round1(drainS),
        interrupted: o.stop?.aborted === true,
      },
      hub_rss_mb: { at_end_of_run: rssAtEnd ?? null, peak: hubPeakRssMb ?? null },
      inventory_probes: probes.length,
      /** CPU seconds per 1,000 detections stored during the measured run (its windows), per process. */
      cpu_s_per_1000: {
        hub: per1000(cpu.hub, totals.in_run) ?? null,
        fleet: per1000(cpu.fleet, totals.in_run) ?? null,
        database: per1000(cpu.database, totals.in_run) ?? null,
      },
      cpu_s: { hub: round3(cpu.hub), fleet: round3(cpu.fleet), database: cpu.database === undefined ? null : round3(cpu.database) },
      stored_in_run: totals.in_run,
      /** The hub's CPU profile (its whole life): time by package (innermost non-Node frame) and the top functions by self time. */
      profile: o.profile ? { file: o.profile, ...profiled } : null,
      windows,
      database: 'postgresql (scratch database)',
      broker: o.mqttUrl ? `external (${o.mqttUrl})` : 'embedded aedes',
      db_row_delay_ms: o.dbRowDelayMs ?? null,
      fleet_processes: started.length,
      link: { batch_size: o.batchSize ?? 'agent default', max_in_flight: o.maxInFlight ?? 'agent default' },
      method:
        'hub process (MQTT_AUTH off, no per-device publish limit) on a scratch PostgreSQL database; devices = real agent outbox + link + replay source with the stand-in classifier, in child processes; ' +
        'offered/retransmitted from the devices\u2019 counters, stored and capture-to-state (received_at \u2212 captured_at) from the database by received_at, hub RSS from /proc and pending from /metrics each second, ' +
        `GET /inventory by a prober every ${o.proberIntervalMs} ms (one at a time)`,
      machine: { ...machineBefore, load_average_after: machineInfo().load_average },
    };
  } finally {
    await Promise.all(children.map((c) => stopChild(c.proc)));
    await sql?.end().catch(() => undefined);
    await stopChild(hub, 30_000);
    if (o.hubLog) writeFileSync(o.hubLog, hub.stdout() + hub.stderr());
    await scratch.drop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The hub's capacity: the same number of devices, each with a backlog it drains as fast as
 * acknowledgements come, and at most CAPACITY_WINDOW_TOTAL detections in flight over the
 * fleet (so nothing is refused): detections acknowledged per second (the devices' counters,
 * read every second) between the moments 10% and 90% of them were.
 */
async function measureCapacity(o: FleetRunOptions, mqttUrl: string, site: string, work: string, run: string) {
  const framesPerAgent = Math.max(5, Math.ceil(o.capacityDetections / o.devices));
  const total = framesPerAgent * o.devices;
  const maxInFlight = Math.max(1, Math.min(o.maxInFlight ?? 500, Math.floor(CAPACITY_WINDOW_TOTAL / o.devices)));
  const prefix = `cap-${run}-`;
  o.log(`bench fleet: measuring capacity: ${o.devices} devices drain ${framesPerAgent} detections each, at most ${maxInFlight} in flight per device`);
  const children = startFleet({ ...o, maxInFlight }, { prefix, framesPerAgent, rate: CAPACITY_FILL_RATE, mqttUrl, site: `${site}-capacity`, work: join(work, 'capacity') });
  const acked: Array<[number, number]> = [];
  try {
    // Starting a thousand agents takes a while on a busy machine; the drain is timed from when all are up.
    await until(async () => {
      failIfExited(children, 'before it was ready', true);
      return children.every((c) => c.ready || c.proc.child.exitCode === 0);
    }, 600_000);
    let lastLog = 0;
    await until(async () => {
      failIfExited(children, 'while measuring capacity', true);
      const t = sumStats(children.map((c) => c.final ?? c.latest));
      acked.push([Date.now(), t.acked]);
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        o.log(`bench fleet: capacity phase: detected ${t.detected} acked ${t.acked} of ${total}`);
      }
      return children.every((c) => c.proc.child.exitCode !== null);
    }, o.drainTimeoutS * 1000, 250);
  } finally {
    await Promise.all(children.map((c) => stopChild(c.proc)));
  }
  const n = acked[acked.length - 1]?.[1] ?? 0;
  const at = (share: number) => acked.find(([, a]) => a >= share * n)?.[0];
  const t10 = at(0.1);
  const t90 = at(0.9);
  const seconds = t10 !== undefined && t90 !== undefined ? (t90 - t10) / 1000 : 0;
  if (n < total * 0.9 || seconds < 2)
    throw new Error(`capacity phase: ${n} of ${total} detections acknowledged, 10%..90% in ${seconds} s: too few to measure (raise --capacity-detections)`);
  return { per_s: Math.round((0.8 * n) / seconds), measured: true, detections: n, seconds: round1(seconds) };
}

function startFleet(
  o: FleetRunOptions,
  run: { prefix: string; framesPerAgent: number; rate: number; mqttUrl: string; site: string; work: string },
): FleetChild[] {
  const perProcess = Math.ceil(o.devices / o.processes);
  const children: FleetChild[] = [];
  for (let p = 0; p * perProcess < o.devices; p++) {
    const plan: FleetDevicesPlan = {
      prefix: `${run.prefix}${p + 1}-`,
      agents: Math.min(perProcess, o.devices - p * perProcess),
      rate: run.rate,
      framesPerAgent: run.framesPerAgent,
      mqttUrl: run.mqttUrl,
      stateDir: join(run.work, `p${p + 1}`),
      site: run.site,
      ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
      ...(o.maxInFlight !== undefined ? { maxInFlight: o.maxInFlight } : {}),
      drainTimeoutS: o.drainTimeoutS,
      statsEveryMs: 1000,
    };
    const planFile = `${run.work}-plan-${p + 1}.json`;
    writeFileSync(planFile, JSON.stringify(plan));
    const child: FleetChild = { proc: spawnShelf(['bench', 'fleet-devices', planFile], { LOG_LEVEL: 'warn' }), ready: false };
    let buffered = '';
    child.proc.child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const parsed = FleetDevicesStatsSchema.safeParse(safeJson(line));
        if (!parsed.success) continue;
        child.latest = parsed.data;
        if (parsed.data.kind === 'ready') child.ready = true;
        if (parsed.data.kind === 'final') child.final = parsed.data;
      }
    });
    children.push(child);
  }
  return children;
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function failIfExited(children: FleetChild[], when: string, finishedIsFine = false): void {
  for (const c of children) {
    const code = c.proc.child.exitCode;
    if (code === null) continue;
    if (finishedIsFine && code === 0) continue; // a child exits 0 only once its share is offered and acknowledged
    throw new Error(`fleet process exited with ${code} ${when}: ${c.proc.stderr().slice(-2000)}`);
  }
}

async function stopChild(proc: ShelfProcess, killAfterMs = 15_000): Promise<void> {
  const killer = setTimeout(() => void proc.stop('SIGKILL'), killAfterMs);
  await proc.stop('SIGTERM');
  clearTimeout(killer);
}

function sumStats(stats: Array<FleetDevicesStats | undefined>) {
  const keys = ['emitted', 'detected', 'dropped', 'sent', 'messages', 'retransmits', 'acked', 'unacked', 'in_flight', 'connected'] as const;
  const out = Object.fromEntries(keys.map((k) => [k, 0])) as Record<(typeof keys)[number], number>;
  for (const s of stats) if (s) for (const k of keys) out[k] += s[k];
  return out;
}

interface Probe {
  at: number;
  ms: number;
  ok: boolean;
}

/** `GET /inventory` one request at a time, one every `everyMs`: what a dashboard sees while the fleet streams. */
function startProber(url: string, apiKey: string, everyMs: number) {
  const probes: Probe[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const from = performance.now();
      let ok = false;
      try {
        const res = await fetch(url, { headers: { 'X-API-Key': apiKey }, signal: AbortSignal.timeout(60_000) });
        await res.arrayBuffer();
        ok = res.ok;
      } catch {
        ok = false;
      }
      const ms = performance.now() - from;
      probes.push({ at: Date.now(), ms, ok });
      await sleep(Math.max(0, everyMs - ms));
    }
  })();
  return {
    p95Since: (from: number) => {
      const p = percentile(probes.filter((x) => x.at > from).map((x) => x.ms), 0.95);
      return p === null ? null : Math.round(p);
    },
    stop: () => {
      stopped = true;
      void loop;
      return probes;
    },
  };
}

function buildWindows(
  samples: Sample[],
  start: Sample,
  tEnd: number,
  windowS: number,
  stored: Map<number, { n: number; p95: number | null }>,
  probes: Probe[],
): FleetWindow[] {
  const windows: FleetWindow[] = [];
  const t0 = start.at;
  let prev = start;
  for (let k = 0; t0 + k * windowS * 1000 < tEnd; k++) {
    const from = t0 + k * windowS * 1000;
    const to = Math.min(tEnd, from + windowS * 1000);
    const seconds = (to - from) / 1000;
    if (seconds < 1) break;
    const inWindow = samples.filter((s) => s.at > from && s.at <= to);
    const last = inWindow[inWindow.length - 1] ?? prev;
    const db = stored.get(k);
    const p = probes.filter((x) => x.at > from && x.at <= to);
    // Stored as the hub counts its commits (shelfsight_detections_stored_total, read every second); the
    // database's received_at is the committing transaction's start, which lumps long transactions together.
    const storedN = last.stored !== undefined && prev.stored !== undefined ? last.stored - prev.stored : (db?.n ?? 0);
    windows.push({
      from_s: (from - t0) / 1000,
      seconds: round1(seconds),
      offered: last.detected - prev.detected,
      stored: storedN,
      retransmitted: last.retransmits - prev.retransmits,
      sent: last.sent - prev.sent,
      detections_per_message: last.messages > prev.messages ? round1((last.sent - prev.sent) / (last.messages - prev.messages)) : null,
      offered_per_s: round1((last.detected - prev.detected) / seconds),
      stored_per_s: round1(storedN / seconds),
      hub_rss_mb: maxOf(inWindow.map((s) => s.hubRssMb)) ?? null,
      pending: maxOf(inWindow.map((s) => s.pending)) ?? null,
      pending_bytes: maxOf(inWindow.map((s) => s.pendingBytes)) ?? null,
      hub_queue_bytes: maxOf(inWindow.map((s) => s.hubQueueBytes)) ?? null,
      broker_backlog: maxOf(inWindow.map((s) => s.brokerBacklog)) ?? null,
      deferred: last.deferred !== undefined && prev.deferred !== undefined ? last.deferred - prev.deferred : null,
      fleet_unacked: last.unacked,
      inventory_p95_ms: (() => {
        const v = percentile(p.map((x) => x.ms), 0.95);
        return v === null ? null : Math.round(v);
      })(),
      inventory_requests: p.length,
      capture_to_state_p95_ms: db?.p95 === null || db?.p95 === undefined ? null : Math.round(Number(db.p95)),
    });
    prev = last;
  }
  return windows;
}

function maxOf(values: Array<number | undefined>): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length === 0 ? undefined : Math.max(...known);
}

async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
