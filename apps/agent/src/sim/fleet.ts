import * as path from 'node:path';
import { createLogger, type Logger } from '@shelfsight/common';
import type { FrameClassifier } from '@shelfsight/vision';
import { startAgent, type AgentHandle, type AgentStats } from '../agent';
import { StandInClassifier } from '../classify/stand-in-classifier';
import { agentConfig, DEFAULT_MQTT_URL, type AgentConfig } from '../config';
import { ReplaySource, type ReplayTemplate } from '../sources/replay-source';

export interface SimulatedFleetOptions {
  /** Number of agents (device ids `${prefix}1` … `${prefix}N`). */
  agents: number;
  /** Frames per second per agent. */
  rate: number;
  mqttUrl?: string;
  site?: string;
  deviceIdPrefix?: string;
  /** Root for the agents' state (each gets `<stateDir>/<deviceId>`); default `.data/sim`. */
  stateDir?: string;
  /** Replay these images (with sidecars); default: synthetic frames. */
  framesDir?: string;
  /** Locations for frames that carry none (synthetic frames): default a grid A-01-1-A … */
  locations?: string[];
  /** Frames per agent before its source stops (default: until stopped). */
  framesPerAgent?: number;
  /** Per-device MQTT credentials. */
  credentials?: (deviceId: string) => { username: string; password: string } | undefined;
  /** Classifier per agent (may be shared); default: the deterministic stand-in. */
  classifier?: (deviceId: string) => FrameClassifier | Promise<FrameClassifier>;
  /**
   * Any other agent option (batch size, outbox bound, ...). The fleet's own buffers are
   * bounded per device: the outbox at SIM_OUTBOX_MAX_BYTES and the frame buffer at
   * SIM_FRAME_BUFFER_FRAMES unless given here (a thousand devices with an agent's defaults
   * could hold gigabytes).
   */
  agent?: Partial<AgentConfig>;
  logger?: Logger;
}

export interface SimulatedFleet {
  agents: AgentHandle[];
  stats(): { agents: AgentStats[]; totals: { emitted: number; detected: number; dropped: number; pending: number; pendingBytes: number; inFlight: number } };
  /** Resolves when every agent's source is done and everything is acknowledged (needs `framesPerAgent`). */
  idle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Agents started at once while the fleet starts. */
const START_CONCURRENCY = 16;
/** Outbox bound of a simulated device unless given: about 3,000 detections (an agent's default is 16 MiB). */
export const SIM_OUTBOX_MAX_BYTES = 1024 * 1024;
/** Recent frames a simulated device keeps for frame requests unless given (an agent keeps 100). */
export const SIM_FRAME_BUFFER_FRAMES = 10;

/**
 * Many agents in one process, each with the real outbox, link, queue and sources;
 * only the classifier is a stand-in (unless one is given). For `shelf sim`, fleet
 * tests and benchmarks.
 */
export async function startSimulatedFleet(options: SimulatedFleetOptions): Promise<SimulatedFleet> {
  const logger = options.logger ?? createLogger('sim');
  const prefix = options.deviceIdPrefix ?? 'sim-';
  const site = options.site ?? 'sim-site';
  const root = path.resolve(options.stateDir ?? path.join('.data', 'sim'));
  const templates: ReplayTemplate[] = options.framesDir
    ? await ReplaySource.templatesFromDir(options.framesDir)
    : ReplaySource.syntheticTemplates(32);
  const locations = options.locations ?? defaultLocations();
  const agents: AgentHandle[] = [];
  const sources: ReplaySource[] = [];
  const startOne = async (i: number): Promise<void> => {
    const deviceId = `${prefix}${i}`;
    const creds = options.credentials?.(deviceId);
    const config = agentConfig({
      kind: 'sim',
      // Synthetic frames are no images: no thumbnails, so no samples unless real frames are replayed.
      samplesPerMinute: options.framesDir ? undefined : 0,
      outboxMaxBytes: SIM_OUTBOX_MAX_BYTES,
      frameBufferFrames: SIM_FRAME_BUFFER_FRAMES,
      ...options.agent,
      deviceId,
      site,
      mqttUrl: options.mqttUrl ?? options.agent?.mqttUrl ?? DEFAULT_MQTT_URL,
      mqttUsername: creds?.username,
      mqttPassword: creds?.password,
      classifier: 'stand-in',
      stateDir: path.join(root, deviceId),
      framesDir: undefined,
    });
    const source = new ReplaySource({
      rate: options.rate,
      templates,
      site,
      locations: rotate(locations, i * 7),
      limit: options.framesPerAgent,
      runId: `${deviceId}/${Date.now()}`,
      logger,
    });
    const classifier = options.classifier ? await options.classifier(deviceId) : new StandInClassifier();
    const agent = await startAgent(config, { classifier, logger, sources: [source] });
    sources.push(source);
    agents.push(agent);
  };
  try {
    // A few at a time: opening an outbox is a handful of fsyncs, and one after another a
    // large fleet would take long to start (its first agents running alone meanwhile).
    const ids = Array.from({ length: options.agents }, (_, k) => k + 1);
    const failures: unknown[] = [];
    await Promise.all(
      Array.from({ length: Math.min(START_CONCURRENCY, ids.length) }, async () => {
        for (let i = ids.shift(); i !== undefined && failures.length === 0; i = ids.shift()) {
          await startOne(i).catch((err: unknown) => failures.push(err));
        }
      }),
    );
    if (failures.length > 0) throw failures[0];
  } catch (err) {
    await Promise.allSettled(agents.map((a) => a.stop()));
    throw err;
  }
  // In device order (they finished starting in any order).
  const order = (a: AgentHandle) => Number(a.stats().deviceId.slice(prefix.length));
  agents.sort((a, b) => order(a) - order(b));
  logger.info('simulated fleet started', { agents: agents.length, rate: options.rate, site });

  return {
    agents,
    stats: () => {
      const all = agents.map((a) => a.stats());
      return {
        agents: all,
        totals: {
          emitted: sources.reduce((n, s) => n + s.emittedCount, 0),
          detected: all.reduce((n, s) => n + s.frames.detected, 0),
          dropped: all.reduce((n, s) => n + s.frames.dropped, 0),
          pending: all.reduce((n, s) => n + s.outbox.depth, 0),
          pendingBytes: all.reduce((n, s) => n + s.outbox.bytes, 0),
          inFlight: all.reduce((n, s) => n + s.link.inFlight, 0),
        },
      };
    },
    idle: async (timeoutMs) => {
      await Promise.all(agents.map((a) => a.idle(timeoutMs)));
    },
    stop: async () => {
      await Promise.allSettled(agents.map((a) => a.stop()));
    },
  };
}

function defaultLocations(): string[] {
  const out: string[] = [];
  for (const aisle of ['A', 'B', 'C'])
    for (let rack = 1; rack <= 4; rack++)
      for (let shelf = 1; shelf <= 3; shelf++) for (const bin of ['A', 'B']) out.push(`${aisle}-${String(rack).padStart(2, '0')}-${shelf}-${bin}`);
  return out;
}

function rotate<T>(list: T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}
