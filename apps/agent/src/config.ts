import { z } from 'zod';
import { cfg, loadConfig, type ConfigOf } from '@shelfsight/common';
import { DEVICE_ID_PATTERN, DEVICE_KINDS, SiteSchema } from '@shelfsight/contracts';

/** The hub's embedded aedes broker listens here by default (`shelf hub`, `npm start`). */
export const DEFAULT_MQTT_URL = 'mqtt://127.0.0.1:1884';

/** Where the generated demo model lives when no --model is given (shared with `npm start`). */
export const DEMO_DATA_DIR = '.data/demo';

export const CLASSIFIER_KINDS = ['tfjs', 'stand-in'] as const;
export type ClassifierKind = (typeof CLASSIFIER_KINDS)[number];

/**
 * Every option of the edge agent: environment variable, `shelf agent` flag, schema
 * and default. Parsed once at start by {@link loadAgentConfig}; `--help` and the
 * README table are generated from the descriptions here.
 */
export const AGENT_CONFIG = {
  deviceId: {
    env: 'DEVICE_ID',
    flag: 'device-id',
    description: 'device id, unique in the fleet; used in MQTT topics and as the MQTT client id',
    schema: z.string().regex(DEVICE_ID_PATTERN, 'letters, digits, _ . - (max 64)'),
  },
  site: { env: 'SITE', flag: 'site', description: 'site (warehouse) this device works in, unless a frame sidecar says otherwise', schema: SiteSchema },
  kind: { env: 'DEVICE_KIND', flag: 'kind', description: `device kind: ${DEVICE_KINDS.join(', ')}`, schema: z.enum(DEVICE_KINDS).default('robot') },
  mqttUrl: {
    env: 'MQTT_URL',
    flag: 'mqtt-url',
    description: "MQTT broker URL; the default is the hub's embedded broker",
    schema: cfg.url(['mqtt', 'mqtts', 'tcp', 'ssl', 'ws', 'wss']).default(DEFAULT_MQTT_URL),
  },
  mqttUsername: { env: 'MQTT_USERNAME', flag: 'mqtt-username', description: 'MQTT username (per-device credential; default: none)', schema: cfg.optionalString() },
  mqttPassword: { env: 'MQTT_PASSWORD', flag: 'mqtt-password', description: 'MQTT password (per-device credential; default: none)', schema: cfg.optionalString(), secret: true },
  mqttCaFile: {
    env: 'MQTT_CA_FILE',
    flag: 'mqtt-ca-file',
    description: 'PEM file of the CA that signed the broker\u2019s TLS certificate, for mqtts:// URLs (default: the system\u2019s CAs only)',
    schema: cfg.optionalString(),
  },
  framesDir: {
    env: 'AGENT_FRAMES_DIR',
    flag: 'frames-dir',
    description: 'directory polled for frames (jpg/jpeg/png/webp + optional <name>.json sidecar); unset = no directory source',
    schema: cfg.optionalString(),
  },
  framesAfter: {
    env: 'AGENT_FRAMES_AFTER',
    flag: 'frames-after',
    description: 'what happens to a frame file once its detection is stored (or it was rejected): keep (remembered in the journal) or delete (image and sidecar)',
    schema: z.enum(['keep', 'delete']).default('keep'),
  },
  pollMs: { env: 'AGENT_POLL_MS', flag: 'poll-ms', description: 'how often the frames directory is scanned, ms', schema: cfg.int(500, 10) },
  settleMs: {
    env: 'AGENT_SETTLE_MS',
    flag: 'settle-ms',
    description: 'a file is picked up only when unmodified for this long, ms (lets writers finish)',
    schema: cfg.int(200, 0),
  },
  stateDir: {
    env: 'AGENT_STATE_DIR',
    flag: 'state-dir',
    description: 'directory for durable state: outbox, processed-frames journal (default .data/agent/<device id>)',
    schema: cfg.optionalString(),
  },
  classifier: {
    env: 'AGENT_CLASSIFIER',
    flag: 'classifier',
    description: 'tfjs = the vision classifier (backbone + head from --model); stand-in = deterministic fake for simulation and tests',
    schema: z.enum(CLASSIFIER_KINDS).default('tfjs'),
  },
  modelDir: { env: 'AGENT_MODEL_DIR', flag: 'model', description: `model directory (manifest.json, head, labels) for the tfjs classifier; default: the generated demo model in ${DEMO_DATA_DIR}, built on first use`, schema: cfg.optionalString() },
  backbone: { env: 'AGENT_BACKBONE', flag: 'backbone', description: 'backbone id or path, overriding the one the model names', schema: cfg.optionalString() },
  topK: { env: 'AGENT_TOP_K', flag: 'top-k', description: 'number of scored categories reported per detection (1-10)', schema: z.coerce.number().int().min(1).max(10).default(3) },
  concurrency: {
    env: 'AGENT_CLASSIFY_CONCURRENCY',
    flag: 'classify-concurrency',
    description: 'frames classified at once; >1 only pays with a fast classifier (the simulator), where detections then share outbox fsyncs',
    schema: z.coerce.number().int().min(1).max(256).default(1),
  },
  queueSize: {
    env: 'AGENT_QUEUE_SIZE',
    flag: 'queue-size',
    description: 'frames waiting for the classifier; when full, pushed frames replace a queued frame of the same location, else the oldest (counted as dropped); the directory source just waits',
    schema: cfg.int(16, 1),
  },
  batchSize: { env: 'AGENT_BATCH_SIZE', flag: 'batch-size', description: 'max detections per MQTT message', schema: cfg.int(50, 1) },
  linkLingerMs: {
    env: 'AGENT_LINK_LINGER_MS',
    flag: 'link-linger-ms',
    description: 'a message with fewer than --batch-size detections waits up to this long for more before it is published, ms (a device at a few frames/s then sends few, fuller messages); 0 = publish at once',
    schema: cfg.int(250, 0),
  },
  maxInFlight: {
    env: 'AGENT_MAX_IN_FLIGHT',
    flag: 'max-in-flight',
    description: 'max detections published but not yet acknowledged by the hub (the ceiling: the window the hub grants in its acks, and one halved on ack timeouts, may be smaller)',
    schema: cfg.int(500, 1),
  },
  ackTimeoutMs: {
    env: 'AGENT_ACK_TIMEOUT_MS',
    flag: 'ack-timeout-ms',
    description: 'a detection not acknowledged within this time is published again, ms, after a jittered hold and as far as the then halved window allows (doubles, up to 32x, while the hub acks nothing)',
    schema: cfg.int(10_000, 100),
  },
  outboxMaxBytes: {
    env: 'AGENT_OUTBOX_MAX_BYTES',
    flag: 'outbox-max-bytes',
    description:
      'outbox bound, bytes of unacknowledged detections (16 MiB ≈ 45k detections, ≈ 30 MB of memory); when reached the agent stops taking new frames (directory frames wait on disk, pushed frames are dropped by the queue policy) until acks free space',
    schema: cfg.int(16 * 1024 * 1024, 1024),
  },
  outboxCompactBytes: {
    env: 'AGENT_OUTBOX_COMPACT_BYTES',
    flag: 'outbox-compact-bytes',
    description: 'rewrite the outbox log (atomically) once it is larger than this and more than half of it is acknowledged, bytes',
    schema: cfg.int(1024 * 1024, 1024),
  },
  sampleMinConfidence: {
    env: 'AGENT_SAMPLE_MIN_CONFIDENCE',
    flag: 'sample-min-confidence',
    description: 'send a frame as a sample when its top confidence is below this',
    schema: z.coerce.number().min(0).max(1).default(0.6),
  },
  sampleMinMargin: {
    env: 'AGENT_SAMPLE_MIN_MARGIN',
    flag: 'sample-min-margin',
    description: 'send a frame as a sample when top-1 minus top-2 confidence is below this',
    schema: z.coerce.number().min(0).max(1).default(0.1),
  },
  sampleAuditRate: {
    env: 'AGENT_SAMPLE_AUDIT_RATE',
    flag: 'sample-audit-rate',
    description: 'fraction of the remaining frames sent as samples at random (audit)',
    schema: z.coerce.number().min(0).max(1).default(0.01),
  },
  samplesPerMinute: { env: 'AGENT_SAMPLES_PER_MINUTE', flag: 'samples-per-minute', description: 'sample rate limit per minute (0 = no samples)', schema: cfg.int(6, 0) },
  samplesPerDay: { env: 'AGENT_SAMPLES_PER_DAY', flag: 'samples-per-day', description: 'sample rate limit per rolling 24 h (0 = no samples)', schema: cfg.int(500, 0) },
  frameBufferFrames: {
    env: 'AGENT_FRAME_BUFFER_FRAMES',
    flag: 'frame-buffer-frames',
    description: 'recent frames kept in memory for hub frame requests (0 = none)',
    schema: cfg.int(100, 0),
  },
  frameBufferBytes: {
    env: 'AGENT_FRAME_BUFFER_BYTES',
    flag: 'frame-buffer-bytes',
    description: 'memory bound of the recent-frames buffer, bytes',
    schema: cfg.int(32 * 1024 * 1024, 0),
  },
  heartbeatMs: { env: 'AGENT_HEARTBEAT_MS', flag: 'heartbeat-ms', description: 'heartbeat interval, ms', schema: cfg.int(10_000, 100) },
  reconnectMinMs: { env: 'AGENT_RECONNECT_MIN_MS', flag: 'reconnect-min-ms', description: 'first reconnect delay, ms (doubles per failure, with jitter)', schema: cfg.int(500, 10) },
  reconnectMaxMs: { env: 'AGENT_RECONNECT_MAX_MS', flag: 'reconnect-max-ms', description: 'longest reconnect delay, ms', schema: cfg.int(30_000, 10) },
  shutdownFlushMs: {
    env: 'AGENT_SHUTDOWN_FLUSH_MS',
    flag: 'shutdown-flush-ms',
    description: 'on stop, wait this long for the hub to acknowledge what is pending (the rest stays in the outbox)',
    schema: cfg.int(5_000, 0),
  },
  httpPort: { env: 'AGENT_HTTP_PORT', flag: 'http-port', description: 'port for GET /health, GET /metrics (and POST /frames with --http-upload); 0 = off', schema: cfg.port(0) },
  httpUpload: {
    env: 'AGENT_HTTP_UPLOAD',
    flag: 'http-upload',
    description: 'accept frame uploads: POST /frames?location=A-03-2-B&capturedAt=<ISO> with the image as body (needs --http-port)',
    schema: cfg.bool(false),
  },
  trustedKeys: {
    env: 'AGENT_TRUSTED_KEYS',
    flag: 'trusted-keys',
    description:
      'file of the rollout ROOT public keys this device trusts, one "<keyid> <base64 key>" a line (`shelf keys root init` prints it; `shelf device add --trusted-keys-out` writes the hub\u2019s). The release keys that sign offers and commands come from the key lists a root signed (fetched from the hub at start, retained on MQTT); unset = rollouts off (offers ignored)',
    schema: cfg.optionalString(),
  },
  hubHttpUrl: {
    env: 'AGENT_HUB_HTTP_URL',
    flag: 'hub-http-url',
    description: "the hub's HTTP base URL; offered head artifacts are downloaded from its paths (with the offer's download token, else MQTT_USERNAME/MQTT_PASSWORD as basic auth); needed with --trusted-keys",
    schema: cfg.url(['http', 'https']).optional(),
  },
  shadowFrames: {
    env: 'AGENT_SHADOW_FRAMES',
    flag: 'shadow-frames',
    description: 'frames an offered head scores beside the active one (shadow) before it is activated',
    schema: cfg.int(50, 1),
  },
  httpHost: { env: 'AGENT_HTTP_HOST', flag: 'http-host', description: 'address the health/metrics server binds to', schema: cfg.string('127.0.0.1') },
};

export type AgentConfigSpec = typeof AGENT_CONFIG;
export type AgentConfig = ConfigOf<AgentConfigSpec>;

/** Parse and validate the agent configuration once; throws ConfigError naming the bad variables. */
export function loadAgentConfig(flags: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return loadConfig(AGENT_CONFIG, flags, env);
}

/** Build a complete config for embedded use (tests, simulation): defaults plus overrides, still validated. */
export function agentConfig(overrides: Partial<AgentConfig> & Pick<AgentConfig, 'deviceId' | 'site'>): AgentConfig {
  return loadConfig(AGENT_CONFIG, overrides as Record<string, unknown>, {});
}
