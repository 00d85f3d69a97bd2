import { EventEmitter } from 'node:events';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, createLogger, METRICS_CONTENT_TYPE, type Logger } from '@shelfsight/common';
import { parseTrustedKeys, type FrameRequest, type Heartbeat, type ModelCommand, type ModelOffer, type TrustedKeys } from '@shelfsight/contracts';
import type { FrameClassifier } from '@shelfsight/vision';
import { DEMO_DATA_DIR, type AgentConfig } from './config';
import { loadStandInHead, StandInClassifier } from './classify/stand-in-classifier';
import { OpsServer, sendJson, sendText } from './http/ops-server';
import { Link } from './link/link';
import { HeadHolder } from './models/head-holder';
import { fetchKeyList } from './models/key-list-fetch';
import { deviceBackboneOf } from './models/offer-check';
import { RolloutAgent, type HeadLoader } from './models/rollout-agent';
import { AgentMetrics } from './metrics/metrics';
import { Outbox, type OutboxRecovery } from './outbox/outbox';
import { Pipeline, type ClassifiedFrame } from './pipeline/pipeline';
import { FrameRing } from './samples/frame-ring';
import { Sampler } from './samples/sampler';
import { DirectorySource } from './sources/directory-source';
import { HttpUploadSource } from './sources/http-upload-source';
import type { Frame, FrameSource } from './sources/frame';
import { ProcessedJournal } from './sources/processed-journal';
import { AGENT_VERSION } from './version';

export interface AgentDeps {
  /** Classifier to use instead of loading one from the config (tests, simulation). */
  classifier?: FrameClassifier;
  logger?: Logger;
  /** Extra frame sources besides the configured directory (replay, synthetic, ...). */
  sources?: FrameSource[];
  /** How offered heads are loaded, instead of the configured classifier's own format (tests, simulation). */
  loadHead?: HeadLoader;
}

export interface AgentStats {
  deviceId: string;
  connected: boolean;
  uptimeS: number;
  frames: { detected: number; rejected: number; dropped: number };
  queueDepth: number;
  outbox: { depth: number; bytes: number; fileBytes: number; maxBytes: number; full: boolean; nextSeq: number; refused: number };
  link: Link['counters'] & { inFlight: number };
  p95LatencyMs: number;
  samples: Sampler['counts'];
  recovery: OutboxRecovery;
}

export interface AgentHandle {
  readonly deviceId: string;
  readonly config: AgentConfig;
  /** Port of the health/metrics server, if enabled. */
  readonly httpPort: number | undefined;
  /** The active head, a candidate beside it and the previous one (rollouts swap heads through it). */
  readonly heads: HeadHolder;
  /** `connected`, `disconnected`, `acked` (seqs), `detection` (Detection), `idle`. */
  readonly events: EventEmitter;
  stats(): AgentStats;
  /** Prometheus text of the agent's metrics. */
  metrics(): Promise<string>;
  /** Queue a frame from code (push source semantics: the queue policy applies). */
  offer(frame: Frame): void;
  /** Resolves when the outbox is empty (every detection acknowledged). */
  allAcked(timeoutMs?: number): Promise<void>;
  /** Resolves when sources have nothing left, the queue is empty and every detection is acknowledged. */
  idle(timeoutMs?: number): Promise<void>;
  /** Graceful stop: stop sources, finish the current frame, flush to the hub, death `shutdown`, close. */
  stop(): Promise<void>;
}

/** Start an edge agent in this process. */
export async function startAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<AgentHandle> {
  const startedAt = new Date();
  // Refuse a bad configuration before anything is opened (classifier, outbox, journal, port).
  validateAgentConfig(config);
  const logger = (deps.logger ?? createLogger('agent')).child({ deviceId: config.deviceId });
  const stateDir = path.resolve(config.stateDir ?? path.join('.data', 'agent', config.deviceId));
  await fsp.mkdir(stateDir, { recursive: true });

  const classifier = deps.classifier ?? (await loadConfiguredClassifier(config, logger));
  // Every user of the classifier goes through the holder, so a rollout can swap the head live.
  // The configured classifier is disposed here, last: heads rolled out to a tfjs device share its backbone.
  const heads = new HeadHolder(classifier, { ownsActive: false, logger });
  const disposeHeads = async () => {
    await heads.dispose();
    if (!deps.classifier) await classifier.dispose();
  };
  let rolloutSetup: { roots: TrustedKeys; loadHead: HeadLoader } | undefined;
  try {
    rolloutSetup = config.trustedKeys ? await rolloutSetupFor(config, classifier, deps.loadHead) : undefined;
  } catch (err) {
    await disposeHeads();
    throw err;
  }
  const { outbox, recovery } = await Outbox.open(path.join(stateDir, 'outbox'), { maxBytes: config.outboxMaxBytes, compactMinBytes: config.outboxCompactBytes, logger });
  logger.info(recovery.newEpoch ? 'outbox created: new sequence epoch' : 'outbox opened', { stateDir, pending: recovery.pending, nextSeq: recovery.nextSeq, epoch: recovery.epoch });

  const metrics = new AgentMetrics();
  const events = new EventEmitter();
  const pipeline = new Pipeline(heads, outbox, { queueSize: config.queueSize, concurrency: config.concurrency, topK: config.topK, logger }, metrics);
  const sources: FrameSource[] = [...(deps.sources ?? [])];
  let journal: ProcessedJournal | undefined;
  let dirSource: DirectorySource | undefined;
  if (config.framesDir) {
    journal = await ProcessedJournal.open(path.join(stateDir, 'processed.log'));
    dirSource = new DirectorySource({
      dir: path.resolve(config.framesDir),
      site: config.site,
      pollMs: config.pollMs,
      settleMs: config.settleMs,
      deleteProcessed: config.framesAfter === 'delete',
      journal,
      logger,
    });
    sources.unshift(dirSource);
  }

  let ops: OpsServer | undefined;
  let httpPort: number | undefined;
  if (config.httpPort > 0) ops = new OpsServer();
  if (ops && config.httpUpload) sources.push(new HttpUploadSource(ops, config.site));

  const link = new Link(
    {
      url: config.mqttUrl,
      deviceId: config.deviceId,
      username: config.mqttUsername,
      password: config.mqttPassword,
      ...(config.mqttCaFile ? { ca: readFileSync(config.mqttCaFile) } : {}),
      batchSize: config.batchSize,
      lingerMs: config.linkLingerMs,
      maxInFlight: config.maxInFlight,
      ackTimeoutMs: config.ackTimeoutMs,
      reconnectMinMs: config.reconnectMinMs,
      reconnectMaxMs: config.reconnectMaxMs,
      logger,
      birth: () => ({
        kind: config.kind,
        site: config.site,
        agentVersion: AGENT_VERSION,
        backboneId: heads.backboneId,
        modelVersion: heads.modelVersion,
        startedAt: startedAt.toISOString(),
      }),
    },
    outbox,
  );
  for (const e of ['connected', 'disconnected', 'acked'] as const) link.on(e, (arg: unknown) => events.emit(e, arg));

  // Rollouts (with AGENT_TRUSTED_KEYS): restore the activated head before the birth names it.
  let rollout: RolloutAgent | undefined;
  if (rolloutSetup) {
    try {
      rollout = await RolloutAgent.open({
        stateDir,
        deviceId: config.deviceId,
        heads,
        roots: rolloutSetup.roots,
        keyList: await fetchKeyList(config.hubHttpUrl as string, logger),
        loadHead: rolloutSetup.loadHead,
        backbone: deviceBackboneOf(classifier),
        hubHttpUrl: config.hubHttpUrl as string,
        headers: config.mqttUsername ? { authorization: `Basic ${Buffer.from(`${config.mqttUsername}:${config.mqttPassword ?? ''}`).toString('base64')}` } : undefined,
        shadowFrames: config.shadowFrames,
        publish: (status) => link.publishRolloutStatus(status),
        logger,
      });
    } catch (err) {
      // Nothing is running yet: release the files and the model, then fail.
      await outbox.close();
      await journal?.close();
      await disposeHeads();
      throw err;
    }
    const r = rollout;
    link.on('model-offer', (offer: ModelOffer) => void r.offer(offer));
    link.on('model-offer-invalid', (message: string) => r.invalidOffer(message));
    link.on('model-command', (cmd: ModelCommand) => void r.command(cmd));
    link.on('release-keys', (raw: unknown) => void r.takeKeyList(raw, 'mqtt'));
    // After a reconnect, ask the hub too: a broker that restarted without persistence has lost the retained list.
    let connects = 0;
    link.on('connected', () => {
      if (++connects === 1) return;
      void fetchKeyList(config.hubHttpUrl as string, logger).then((raw) => (raw === undefined ? undefined : r.takeKeyList(raw, 'hub')));
    });
    link.on('connected', () => r.resend());
  }
  pipeline.on('classified', (c: { detection: unknown }) => events.emit('detection', c.detection));
  // The directory source backs off while the queue or outbox is full; wake it when room returns.
  const wake = () => dirSource?.poke();
  pipeline.on('settled', wake);
  outbox.on('space', wake);

  const ring = new FrameRing(config.frameBufferFrames, config.frameBufferBytes);
  const sampler = new Sampler(
    {
      minConfidence: config.sampleMinConfidence,
      minMargin: config.sampleMinMargin,
      auditRate: config.sampleAuditRate,
      perMinute: config.samplesPerMinute,
      perDay: config.samplesPerDay,
    },
    {
      deviceId: config.deviceId,
      backboneId: () => heads.backboneId,
      publish: (topic, payload) => link.publish(topic, payload, 1),
      ring,
      logger,
    },
  );
  pipeline.on('classified', (c: ClassifiedFrame) => sampler.consider(c));
  link.on('frame-request', (req: FrameRequest) => sampler.request(req));
  link.on('connected', () => sampler.flush());

  registerMetrics(metrics, { outbox, pipeline, link, startedAt });
  metrics.mirror(
    'shelf_agent_samples_total',
    'Samples by outcome: the reason they were picked (low_confidence, small_margin, audit, requested), sent, rate_limited, dropped, failed',
    () => ({ ...sampler.counts }),
  );
  metrics.mirror(
    'shelf_agent_model_rejected_total',
    'Offered heads refused or rolled back, by reason (bad_signature, unknown_key, offer_mismatch, expired, replayed_counter, foreign_backbone, hash_mismatch, length_mismatch, download_failed, load_failed, malformed, shadow_gate, health_regression, operator, rolled_back_before)',
    () => ({ ...rollout?.rejected }),
    'reason',
  );
  metrics.mirror('shelf_agent_model_activations_total', 'Offered heads activated after their shadow run', () => rollout?.activations ?? 0);
  metrics.mirror('shelf_agent_model_rollbacks_total', 'Active heads rolled back (health regression or operator command)', () => rollout?.rollbacks ?? 0);
  metrics.mirror('shelf_agent_model_commands_malformed_total', 'model-command messages ignored because they failed validation', () => link.counters.commandsMalformed);
  metrics.mirror(
    'shelf_agent_model_commands_refused_total',
    'model-command messages refused: not signed by a current release key (unknown_key, bad_signature), for another device, expired, or replayed',
    () => ({ ...rollout?.commandsRefused }),
    'reason',
  );
  metrics.mirror('shelf_agent_key_lists_refused_total', 'release key lists refused (unknown_root, bad_signature, expired, not_newer, malformed)', () => ({ ...rollout?.keyListsRefused }), 'reason');
  metrics.gauge('shelf_agent_key_list_version', 'version of the root-signed release key list held (0: none)', () => rollout?.keyListVersion ?? 0);
  metrics.gauge('shelf_agent_frame_buffer_frames', 'Frames held for hub frame requests', () => ring.size);
  const renderMetrics = () => metrics.render();

  const idleNow = () => pipeline.idle() && outbox.depth === 0 && sources.every((s) => s.idle());
  const checkIdle = () => {
    if (idleNow()) events.emit('idle');
  };
  pipeline.on('idle', checkIdle);
  link.on('acked', checkIdle);

  const health = () => ({
    status: link.connected && !outbox.full ? 'ok' : 'degraded',
    deviceId: config.deviceId,
    connected: link.connected,
    outboxDepth: outbox.depth,
    outboxFull: outbox.full,
    queueDepth: pipeline.queue.length,
    uptimeS: Math.round((Date.now() - startedAt.getTime()) / 1000),
  });
  if (ops) {
    ops
      .route('GET', '/health', (_req, res) => sendJson(res, 200, health()))
      .route('GET', '/metrics', async (_req, res) => sendText(res, 200, await renderMetrics(), METRICS_CONTENT_TYPE));
    try {
      httpPort = await ops.listen(config.httpPort, config.httpHost);
    } catch (err) {
      // Nothing is running yet: release the files and the model, then fail.
      await outbox.close();
      await journal?.close();
      await disposeHeads();
      throw err;
    }
    logger.info('ops http listening', { port: httpPort, host: config.httpHost });
  }

  pipeline.start();
  link.start();
  for (const s of sources) await s.start(pipeline);

  // Heartbeat: frames/s since the previous one, p95 latency, depths, disk free.
  let lastBeat = { at: Date.now(), frames: 0 };
  const beat = async () => {
    const diskFreeBytes = await diskFree(stateDir);
    const now = Date.now();
    const frames = metrics.frames('detected');
    const framesPerS = ((frames - lastBeat.frames) * 1000) / Math.max(1, now - lastBeat.at);
    lastBeat = { at: now, frames };
    link.heartbeat({
      uptimeS: (now - startedAt.getTime()) / 1000,
      framesPerS,
      p95LatencyMs: metrics.latency.percentile(95),
      queueDepth: pipeline.queue.length,
      outboxDepth: outbox.depth,
      outboxBytes: outbox.bytes,
      diskFreeBytes,
      ...(rollout ? rollout.heartbeatFields() : headsHeartbeat(heads)),
    });
  };
  const heartbeatTimer = setInterval(() => void beat().catch(() => undefined), config.heartbeatMs);
  link.on('connected', () => void beat().catch(() => undefined));

  const waitFor = (done: () => boolean, event: string, emitter: EventEmitter, timeoutMs: number | undefined, what: string) =>
    new Promise<void>((resolve, reject) => {
      if (done()) return resolve();
      let timer: NodeJS.Timeout | undefined;
      const poll = setInterval(() => check(), 250);
      const check = () => {
        if (!done()) return;
        cleanup();
        resolve();
      };
      const cleanup = () => {
        clearInterval(poll);
        clearTimeout(timer);
        emitter.off(event, check);
      };
      emitter.on(event, check);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new Error(`agent ${config.deviceId}: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
      }
    });

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    logger.info('stopping', { pending: outbox.depth });
    for (const s of sources) await s.stop();
    rollout?.close();
    await pipeline.stop();
    await link.stop(config.shutdownFlushMs);
    clearInterval(heartbeatTimer);
    await ops?.close();
    await outbox.close();
    await journal?.close();
    await disposeHeads();
    logger.info('stopped', { pending: outbox.depth });
  };

  return {
    deviceId: config.deviceId,
    config,
    httpPort,
    heads,
    events,
    stats: () => ({
      deviceId: config.deviceId,
      connected: link.connected,
      uptimeS: (Date.now() - startedAt.getTime()) / 1000,
      frames: {
        detected: metrics.frames('detected'),
        rejected: metrics.frames('rejected'),
        dropped: metrics.frames('dropped'),
      },
      queueDepth: pipeline.queue.length,
      outbox: {
        depth: outbox.depth,
        bytes: outbox.bytes,
        fileBytes: outbox.fileBytes,
        maxBytes: outbox.maxBytes,
        full: outbox.full,
        nextSeq: outbox.nextSeq,
        refused: outbox.refusedTotal,
      },
      link: { ...link.counters, inFlight: link.inFlightCount },
      p95LatencyMs: metrics.latency.percentile(95),
      samples: { ...sampler.counts },
      recovery,
    }),
    metrics: renderMetrics,
    offer: (frame) => pipeline.offer(frame),
    allAcked: (timeoutMs) => waitFor(() => outbox.depth === 0, 'acked', events, timeoutMs, 'all detections acknowledged'),
    idle: (timeoutMs) => waitFor(idleNow, 'idle', events, timeoutMs, 'sources, queue and outbox to drain'),
    stop: () => (stopping ??= stop()),
  };
}

function registerMetrics(
  metrics: AgentMetrics,
  parts: { outbox: Outbox; pipeline: Pipeline; link: Link; startedAt: Date },
): void {
  const { outbox, pipeline, link, startedAt } = parts;
  metrics.gauge('shelf_agent_up_seconds', 'Seconds since the agent started', () => (Date.now() - startedAt.getTime()) / 1000);
  metrics.gauge('shelf_agent_connected', '1 while connected to the broker', () => (link.connected ? 1 : 0));
  metrics.gauge('shelf_agent_queue_depth', 'Frames waiting for the classifier', () => pipeline.queue.length);
  metrics.gauge('shelf_agent_outbox_depth', 'Detections stored and not yet acknowledged by the hub', () => outbox.depth);
  metrics.gauge('shelf_agent_outbox_bytes', 'Size of the unacknowledged detections (bounded by AGENT_OUTBOX_MAX_BYTES)', () => outbox.bytes);
  metrics.gauge('shelf_agent_outbox_max_bytes', 'Outbox bound, bytes', () => outbox.maxBytes);
  metrics.gauge('shelf_agent_outbox_file_bytes', 'Size of the outbox log on disk', () => outbox.fileBytes);
  metrics.gauge('shelf_agent_outbox_full', '1 while the outbox is full (new frames wait on disk or are dropped)', () => (outbox.full ? 1 : 0));
  metrics.gauge('shelf_agent_outbox_next_seq', 'Next detection sequence number', () => outbox.nextSeq);
  metrics.gauge('shelf_agent_in_flight', 'Detections published and awaiting an ack', () => link.inFlightCount);
  const c = link.counters;
  metrics.mirror('shelf_agent_outbox_refused_total', 'Times a detection could not be stored because the outbox was full', () => outbox.refusedTotal);
  metrics.gauge('shelf_agent_outbox_full_seconds', 'How long the outbox has been full, seconds (0 = has room)', () => outbox.fullForMs() / 1000);
  metrics.mirror('shelf_agent_acks_malformed_total', 'Ack messages ignored because they failed validation', () => c.acksMalformed);
  metrics.mirror('shelf_agent_acks_other_epoch_total', 'Acks ignored because they name another sequence epoch (storage replaced)', () => c.acksOtherEpoch);
  metrics.mirror('shelf_agent_acks_total', 'Valid ack messages received', () => c.acksReceived);
  metrics.mirror('shelf_agent_acks_unknown_seq_total', 'Acked sequence numbers that were not pending', () => outbox.unknownAcksTotal);
  metrics.mirror('shelf_agent_detections_sent_total', 'Detections published (including re-publishes)', () => c.detectionsSent);
  metrics.mirror('shelf_agent_detections_acked_total', 'Detections acknowledged and removed from the outbox', () => c.detectionsAcked);
  metrics.mirror('shelf_agent_retransmits_total', 'Detections published again (ack timeout, reconnect, hub restart, deferred by the hub)', () => c.retransmits);
  metrics.gauge('shelf_agent_link_window', 'Detections the link may have in flight now (hub window, congestion window, AGENT_MAX_IN_FLIGHT)', () => link.window);
  metrics.mirror('shelf_agent_detections_deferred_total', 'Detections the hub deferred (over capacity), published again after its retry-after', () => c.detectionsDeferred);
  metrics.mirror('shelf_agent_link_window_decreases_total', 'Times the link halved its window (ack timeout or hub retry-after)', () => c.windowDecreases);
  metrics.mirror('shelf_agent_connects_total', 'Successful broker connections', () => c.connects);
  metrics.mirror('shelf_agent_connect_errors_total', 'Broker connection errors', () => c.connectErrors);
  metrics.mirror('shelf_agent_auth_failures_total', 'Connections refused for bad credentials', () => c.authFailures);
  metrics.gauge('shelf_agent_classify_p95_seconds', 'p95 classification latency over the last 1024 frames, in seconds', () => metrics.latency.percentile(95) / 1000);
}

/** What the heartbeat says about the heads: the active version and the candidate, if any. */
export function headsHeartbeat(heads: HeadHolder): Pick<Heartbeat, 'activeModelVersion' | 'candidate'> {
  const c = heads.candidate;
  return {
    activeModelVersion: heads.modelVersion,
    ...(c ? { candidate: { modelVersion: c.modelVersion, state: c.state, shadowFrames: c.shadowFrames, shadowTarget: c.shadowTarget } } : {}),
  };
}

async function diskFree(dir: string): Promise<number | undefined> {
  try {
    const s = await fsp.statfs(dir);
    return Math.max(0, Math.floor(s.bavail * s.bsize));
  } catch {
    return undefined;
  }
}

/** Settings that are valid one by one but not together (the config schema checks each alone). */
export function validateAgentConfig(config: AgentConfig): void {
  if (config.httpUpload && config.httpPort === 0) {
    throw new ConfigError('AGENT_HTTP_UPLOAD (--http-upload) needs AGENT_HTTP_PORT (--http-port) > 0');
  }
  if (config.trustedKeys && !config.hubHttpUrl) {
    throw new ConfigError('AGENT_TRUSTED_KEYS (--trusted-keys) needs AGENT_HUB_HTTP_URL (--hub-http-url): offered heads are downloaded from the hub');
  }
}

/**
 * Rollouts: the root keys (the release keys come from the key lists they sign), and how this classifier loads an offered head — a stand-in head
 * file for the stand-in, a registry artifact (the `shelf train` folder as a tar) on the
 * running backbone for the TensorFlow.js classifier.
 */
async function rolloutSetupFor(config: AgentConfig, classifier: FrameClassifier, override: HeadLoader | undefined): Promise<{ roots: TrustedKeys; loadHead: HeadLoader }> {
  const file = config.trustedKeys as string;
  let loadHead: HeadLoader | undefined = override;
  if (!loadHead && classifier instanceof StandInClassifier) loadHead = (artifact, manifest) => loadStandInHead(artifact, manifest, config.topK);
  if (!loadHead) {
    const { loadTfjsHead } = await import('./classify/tfjs-head');
    const { TfjsFrameClassifier } = await import('@shelfsight/vision');
    if (!(classifier instanceof TfjsFrameClassifier)) throw new ConfigError('AGENT_TRUSTED_KEYS (--trusted-keys): this classifier cannot load offered heads');
    loadHead = (artifact, manifest) => loadTfjsHead(artifact, manifest, classifier, config.topK);
  }
  let roots: TrustedKeys;
  try {
    roots = parseTrustedKeys(await fsp.readFile(file, 'utf8'), file);
  } catch (err) {
    throw new ConfigError(`AGENT_TRUSTED_KEYS (--trusted-keys): ${(err as Error).message}`);
  }
  return { roots, loadHead };
}

async function loadConfiguredClassifier(config: AgentConfig, logger: Logger): Promise<FrameClassifier> {
  if (config.classifier === 'stand-in') return new StandInClassifier(undefined, undefined, config.topK);
  const vision = await import('@shelfsight/vision');
  await vision.initRuntime(logger); // WASM (or native) backend instead of the slow pure-JS one
  const model = config.modelDir ?? (await vision.ensureDemoModel(path.resolve(DEMO_DATA_DIR), { logger })).modelDir;
  logger.info('loading classifier', { model, backbone: config.backbone ?? '(from model)' });
  return vision.loadClassifier({ model, backbone: config.backbone, topK: config.topK, logger });
}
