import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, createLogger, loadConfig, type ConfigOf } from '@shelfsight/common';
import { startSimulatedFleet } from '@shelfsight/agent';
import { FleetDevicesPlanSchema, runFleetBench, type FleetDevicesPlan, type FleetDevicesStats } from '../bench/fleet-run';
import { SCRATCH_DATABASE_OPTION } from '../bench/scratch-database';
import { addConfigOptions, flagsFrom, onShutdown } from '../options';

const SPEC = {
  devices: { env: 'BENCH_DEVICES', flag: 'devices', description: 'simulated devices', schema: cfg.int(1000, 1) },
  rate: { env: 'BENCH_RATE', flag: 'rate', description: 'frames per second each device offers (one detection each; ignored with --overload)', schema: z.coerce.number().positive().default(2) },
  durationS: { env: 'BENCH_DURATION_S', flag: 'duration-s', description: 'seconds the fleet offers frames (then it drains)', schema: cfg.int(180, 1) },
  windowS: { env: 'BENCH_WINDOW_S', flag: 'window-s', description: 'seconds per reported window', schema: cfg.int(10, 1) },
  processes: { env: 'BENCH_PROCESSES', flag: 'processes', description: 'child processes the devices are spread over', schema: cfg.int(2, 1) },
  overload: {
    env: 'BENCH_OVERLOAD',
    flag: 'overload',
    description: 'offer this multiple of the hub\u2019s capacity (measured first unless --capacity is given) instead of --rate; reports whether goodput held (\u2265 90% of capacity in every window after the first) and memory stayed bounded',
    schema: z.coerce.number().positive().optional(),
  },
  capacity: { env: 'BENCH_CAPACITY', flag: 'capacity', description: 'the hub\u2019s capacity in detections/s for --overload (skips measuring it)', schema: z.coerce.number().positive().optional() },
  capacityDetections: {
    env: 'BENCH_CAPACITY_DETECTIONS',
    flag: 'capacity-detections',
    description: 'detections the capacity measurement drains (the devices\u2019 backlog, at most 20,000 in flight over the fleet)',
    schema: cfg.int(40_000, 100),
  },
  databaseUrl: SCRATCH_DATABASE_OPTION,
  mqttUrl: { env: 'MQTT_URL', flag: 'mqtt-url', description: 'external broker (e.g. Mosquitto) for hub and devices; unset = the hub\u2019s embedded broker', schema: cfg.url(['mqtt', 'tcp']) },
  batchSize: { env: 'BENCH_BATCH_SIZE', flag: 'batch-size', description: 'detections per MQTT message at most (unset = the agent\u2019s default)', schema: z.coerce.number().int().min(1).optional() },
  maxInFlight: { env: 'BENCH_MAX_IN_FLIGHT', flag: 'max-in-flight', description: 'unacknowledged detections per device at most (unset = the agent\u2019s default)', schema: z.coerce.number().int().min(1).optional() },
  dbRowDelayMs: {
    env: 'BENCH_DB_ROW_DELAY_MS',
    flag: 'db-row-delay-ms',
    description: 'emulate a slower database: each stored detection row waits this long (a trigger with pg_sleep, no CPU), so a small fleet can overload the hub on a small shared machine (the CI overload test); 0 = off',
    schema: cfg.number(0, 0),
  },
  drainTimeoutS: { env: 'BENCH_DRAIN_TIMEOUT_S', flag: 'drain-timeout-s', description: 'after offering, wait this long for every detection to be acknowledged', schema: cfg.int(600, 1) },
  proberMs: { env: 'BENCH_PROBER_MS', flag: 'prober-ms', description: 'the GET /inventory prober asks every this many ms (one request at a time)', schema: cfg.int(500, 50) },
  profile: { env: 'BENCH_PROFILE', flag: 'profile', description: 'write a CPU profile of the hub process (node --cpu-prof, its whole life) to this file (.cpuprofile); its top functions by self time go into the result', schema: cfg.optionalString() },
  svg: { env: 'BENCH_SVG', flag: 'svg', description: 'draw the windows (offered, stored, retransmitted per second, hub RSS) into this SVG file', schema: cfg.optionalString() },
  hubLog: { env: 'BENCH_HUB_LOG', flag: 'hub-log', description: 'write the hub process\u2019s log (LOG_LEVEL=warn) to this file at the end', schema: cfg.optionalString() },
  smoke: { env: 'BENCH_SMOKE', flag: 'smoke', description: 'a run of seconds for CI (20 devices x 5 frames/s for 8 s, one process, 4-s windows) unless sizes are given', schema: cfg.bool(false) },
} as const;

type BenchConfig = ConfigOf<typeof SPEC>;

/** The smoke size: every phase runs, in seconds. */
const SMOKE: Partial<BenchConfig> = { devices: 20, rate: 5, durationS: 8, windowS: 4, processes: 1, capacityDetections: 2000, drainTimeoutS: 60 };

/**
 * `shelf bench fleet`: a fleet-shaped load (many devices, a few frames per second each) on a
 * hub process with PostgreSQL; per-window offered/stored/retransmitted, hub memory, pending,
 * `GET /inventory` p95 and capture-to-state p95; `--overload N` offers N times the capacity.
 */
export function registerBenchFleet(bench: Command): void {
  const cmd = bench
    .command('fleet')
    .description(
      'Fleet-shaped ingest: N devices x R frames/s (devices in child processes, hub on a scratch PostgreSQL database); per window offered, stored, retransmitted, hub RSS, pending, GET /inventory p95, capture-to-state p95; --overload 2 offers twice the measured capacity',
    );
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const flags = flagsFrom(SPEC, opts);
    let c = loadConfig(SPEC, flags);
    if (c.smoke) c = { ...c, ...Object.fromEntries(Object.entries(SMOKE).filter(([k]) => flags[k] === undefined && process.env[SPEC[k as keyof typeof SPEC].env] === undefined)) };
    process.stderr.write(
      `bench fleet: ${c.devices} devices, ${c.overload ? `${c.overload}x capacity` : `${c.rate} frames/s each`}, ${c.durationS} s, windows of ${c.windowS} s; hub on PostgreSQL, broker ${c.mqttUrl ?? 'embedded'}\n`,
    );
    // Ctrl-C or SIGTERM: stop offering, end the drain, and still report and clean up (a second one exits at once).
    const stop = new AbortController();
    const interrupt = () => {
      if (stop.signal.aborted) process.exit(130);
      process.stderr.write('bench fleet: interrupted: reporting what was measured, then cleaning up\n');
      stop.abort();
    };
    process.on('SIGINT', interrupt);
    process.on('SIGTERM', interrupt);
    const result = await runFleetBench({
      stop: stop.signal,
      devices: c.devices,
      rate: c.rate,
      durationS: c.durationS,
      windowS: c.windowS,
      processes: c.processes,
      overload: c.overload,
      capacity: c.capacity,
      capacityDetections: c.capacityDetections,
      databaseUrl: c.databaseUrl,
      mqttUrl: c.mqttUrl,
      batchSize: c.batchSize,
      maxInFlight: c.maxInFlight,
      drainTimeoutS: c.drainTimeoutS,
      dbRowDelayMs: c.dbRowDelayMs || undefined,
      proberIntervalMs: c.proberMs,
      profile: c.profile,
      svg: c.svg,
      hubLog: c.hubLog,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });

  // The devices' side: one child process per share of the fleet (started by `shelf bench fleet`).
  bench
    .command('fleet-devices <plan>', { hidden: true })
    .description('internal: run a share of the `bench fleet` devices from a plan file; one JSON stats line a second on stdout')
    .action(async (planFile: string) => {
      const plan = FleetDevicesPlanSchema.parse(JSON.parse(await readFile(planFile, 'utf8')));
      await runFleetDevices(plan);
    });
}

/** Offer `framesPerAgent` frames per device at `rate`, then wait until all is acknowledged (or SIGTERM); stats on stdout. */
async function runFleetDevices(plan: FleetDevicesPlan): Promise<void> {
  const logger = createLogger('bench-fleet-devices', {}, (process.env.LOG_LEVEL as 'warn' | undefined) ?? 'warn');
  const cpuFrom = process.cpuUsage();
  const fleet = await startSimulatedFleet({
    agents: plan.agents,
    deviceIdPrefix: plan.prefix,
    rate: plan.rate,
    framesPerAgent: plan.framesPerAgent,
    mqttUrl: plan.mqttUrl,
    stateDir: plan.stateDir,
    site: plan.site,
    logger,
    agent: {
      ...(plan.batchSize !== undefined ? { batchSize: plan.batchSize } : {}),
      ...(plan.maxInFlight !== undefined ? { maxInFlight: plan.maxInFlight } : {}),
      // A device offering more than a few frames per second (the capacity phase's fill, small
      // overload fleets) classifies several at once, sharing outbox fsyncs as `shelf sim` does,
      // and has room in its queue for a second of frames: the hub, not the device, sets the pace.
      ...(plan.rate > 10 ? { concurrency: 32, queueSize: Math.ceil(plan.rate) } : {}),
      shutdownFlushMs: 500,
    },
  });
  const line = (kind: FleetDevicesStats['kind']) => {
    const { agents, totals } = fleet.stats();
    const cpu = process.cpuUsage(cpuFrom);
    const stats: FleetDevicesStats = {
      kind,
      at: Date.now(),
      emitted: totals.emitted,
      detected: totals.detected,
      dropped: totals.dropped,
      sent: agents.reduce((n, a) => n + a.link.detectionsSent, 0),
      messages: agents.reduce((n, a) => n + a.link.batchesSent, 0),
      retransmits: agents.reduce((n, a) => n + a.link.retransmits, 0),
      acked: agents.reduce((n, a) => n + a.link.detectionsAcked, 0),
      unacked: totals.pending,
      in_flight: agents.reduce((n, a) => n + a.link.inFlight, 0),
      connected: agents.filter((a) => a.connected).length,
      cpu_s: Math.round(((cpu.user + cpu.system) / 1e6) * 1000) / 1000,
    };
    process.stdout.write(`${JSON.stringify(stats)}\n`);
  };
  line('ready');
  const timer = setInterval(() => line('stats'), plan.statsEveryMs);
  const stopped = onShutdown(() => Promise.resolve());
  // Until every device's frames are offered and acknowledged; the parent ends a drain that takes too long with SIGTERM.
  await Promise.race([fleet.idle(), stopped]);
  clearInterval(timer);
  line('final');
  await fleet.stop();
  process.exit(0);
}
