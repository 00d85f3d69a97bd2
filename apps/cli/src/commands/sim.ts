import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, createLogger, loadConfig } from '@shelfsight/common';
import { DEFAULT_MQTT_URL, startSimulatedFleet } from '@shelfsight/agent';
import { issueDeviceCredential, type IssuedCredential } from '../hub-client';
import { addConfigOptions, flagsFrom, onShutdown } from '../options';

export const SIM_SPEC = {
  agents: { env: 'SIM_AGENTS', flag: 'agents', description: 'simulated devices', schema: z.coerce.number().int().min(1).max(10_000).default(10) },
  rate: { env: 'SIM_RATE', flag: 'rate', description: 'frames per second per device', schema: z.coerce.number().positive().default(2) },
  framesPerAgent: {
    env: 'SIM_FRAMES_PER_AGENT',
    flag: 'frames-per-agent',
    description: 'stop each device after this many frames and exit once all are acknowledged (0 = run until stopped)',
    schema: cfg.int(0, 0),
  },
  mqttUrl: { env: 'MQTT_URL', flag: 'mqtt-url', description: 'broker the devices connect to', schema: z.string().default(DEFAULT_MQTT_URL) },
  site: { env: 'SIM_SITE', flag: 'site', description: 'site of the simulated devices', schema: cfg.string('sim-site') },
  deviceIdPrefix: { env: 'SIM_DEVICE_PREFIX', flag: 'device-prefix', description: 'device ids are <prefix>1 … <prefix>N', schema: cfg.string('sim-') },
  stateDir: { env: 'SIM_STATE_DIR', flag: 'state-dir', description: 'root of the devices\u2019 outboxes', schema: cfg.string('.data/sim') },
  framesDir: { env: 'SIM_FRAMES_DIR', flag: 'frames-dir', description: 'replay these images (with sidecars) instead of synthetic frames', schema: cfg.optionalString() },
  batchSize: { env: 'SIM_BATCH_SIZE', flag: 'batch-size', description: 'detections per MQTT message', schema: cfg.int(100, 1) },
  maxInFlight: { env: 'SIM_MAX_IN_FLIGHT', flag: 'max-in-flight', description: 'unacknowledged detections per device', schema: cfg.int(2000, 1) },
  concurrency: {
    env: 'SIM_CLASSIFY_CONCURRENCY',
    flag: 'classify-concurrency',
    description: 'frames each device classifies at once (shares outbox fsyncs)',
    schema: cfg.int(128, 1),
  },
  queueSize: { env: 'SIM_QUEUE_SIZE', flag: 'queue-size', description: 'frames waiting for the classifier per device', schema: cfg.int(1000, 1) },
  apiKey: {
    env: 'HUB_API_KEY',
    flag: 'api-key',
    description: 'hub admin key: issue each simulated device its own MQTT credential first (for a hub with MQTT_AUTH=on); unset = connect without credentials',
    schema: cfg.optionalString(),
  },
  hubUrl: { env: 'HUB_URL', flag: 'hub-url', description: 'hub HTTP address, for issuing credentials (with --api-key)', schema: cfg.string('http://127.0.0.1:3000') },
  timeoutS: { env: 'SIM_TIMEOUT_S', flag: 'timeout-s', description: 'give up waiting for acknowledgements after this long', schema: cfg.int(1800, 1) },
} as const;

/**
 * `shelf sim`: a fleet of simulated devices in one process, speaking the real contracts
 * through the real agent code (outbox, link, queue, sources); only the classifier is a
 * deterministic stand-in, so no TensorFlow is needed. With --frames-per-agent it ends
 * when every detection is acknowledged and prints one JSON line of totals on stdout.
 */
export function registerSim(program: Command): void {
  const cmd = program
    .command('sim')
    .description('Simulate a fleet: N devices at R frames/s each, real outbox and MQTT link, stand-in classifier (no TensorFlow)');
  addConfigOptions(cmd, SIM_SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SIM_SPEC, flagsFrom(SIM_SPEC, opts));
    const logger = createLogger('sim', {}, (process.env.LOG_LEVEL as 'info' | undefined) ?? 'warn');
    const credentials = c.apiKey ? await issueCredentials(c.hubUrl, c.apiKey, c.deviceIdPrefix, c.agents) : undefined;
    const started = Date.now();
    // The fleet's own cost, from starting its agents to the last acknowledgement (module loading excluded): for benchmarks.
    const busyFrom = performance.now();
    const cpuFrom = process.cpuUsage();
    const fleet = await startSimulatedFleet({
      credentials: credentials && ((deviceId) => credentials.get(deviceId)),
      agents: c.agents,
      rate: c.rate,
      mqttUrl: c.mqttUrl,
      site: c.site,
      deviceIdPrefix: c.deviceIdPrefix,
      stateDir: c.stateDir,
      framesDir: c.framesDir,
      framesPerAgent: c.framesPerAgent > 0 ? c.framesPerAgent : undefined,
      logger,
      agent: { batchSize: c.batchSize, maxInFlight: c.maxInFlight, queueSize: c.queueSize, concurrency: c.concurrency, heartbeatMs: 5000, shutdownFlushMs: 1000 },
    });
    const report = setInterval(() => {
      const t = fleet.stats().totals;
      process.stderr.write(
        `sim: ${((Date.now() - started) / 1000).toFixed(0)}s emitted ${t.emitted} detected ${t.detected} unacked ${t.pending} dropped ${t.dropped}\n`,
      );
    }, 2000);
    report.unref();
    if (c.framesPerAgent > 0) {
      await fleet.idle(c.timeoutS * 1000);
      const seconds = (Date.now() - started) / 1000;
      const busyS = (performance.now() - busyFrom) / 1000;
      const cpu = process.cpuUsage(cpuFrom);
      clearInterval(report);
      const t = fleet.stats().totals;
      await fleet.stop();
      process.stdout.write(
        JSON.stringify({
          agents: c.agents,
          emitted: t.emitted,
          detected: t.detected,
          dropped: t.dropped,
          unacked: t.pending,
          seconds,
          busy_s: round3(busyS),
          cpu_s: round3((cpu.user + cpu.system) / 1e6),
        }) + '\n',
      );
      return;
    }
    await onShutdown(async () => {
      clearInterval(report);
      await fleet.stop();
    });
  });
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** One credential per simulated device, a few requests at a time (the hub hashes each password). */
async function issueCredentials(hubUrl: string, apiKey: string, prefix: string, agents: number): Promise<Map<string, IssuedCredential>> {
  const ids = Array.from({ length: agents }, (_, i) => `${prefix}${i + 1}`);
  const out = new Map<string, IssuedCredential>();
  for (let i = 0; i < ids.length; i += 8) {
    const issued = await Promise.all(ids.slice(i, i + 8).map((id) => issueDeviceCredential(hubUrl, apiKey, id)));
    for (const cred of issued) out.set(cred.deviceId, cred);
  }
  process.stderr.write(`sim: issued ${out.size} device credentials at ${hubUrl}\n`);
  return out;
}
