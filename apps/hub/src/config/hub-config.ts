import { z } from 'zod';
import { cfg, ConfigError, loadConfig, type ConfigOf } from '@shelfsight/common';

/** Every setting of the hub: environment variable, CLI flag, meaning, default. */
export const HUB_CONFIG_SPEC = {
  httpPort: { env: 'HTTP_PORT', flag: 'http-port', description: 'port of the REST API', schema: cfg.port(3000) },
  httpHost: { env: 'HTTP_HOST', flag: 'http-host', description: 'address the REST API binds to', schema: cfg.string('0.0.0.0') },
  databaseUrl: {
    env: 'DATABASE_URL',
    flag: 'database-url',
    description: 'PostgreSQL URL; unset = embedded PGlite in DATA_DIR',
    schema: cfg.url(['postgres', 'postgresql']),
  },
  dataDir: { env: 'DATA_DIR', flag: 'data-dir', description: 'folder for the embedded database and hub files', schema: cfg.string('.data/hub') },
  mqttUrl: {
    env: 'MQTT_URL',
    flag: 'mqtt-url',
    description: 'external MQTT broker (mqtt://host:port); unset = embedded aedes broker',
    schema: cfg.url(['mqtt', 'mqtts', 'tcp', 'ws', 'wss']),
  },
  mqttPort: {
    env: 'MQTT_PORT',
    flag: 'mqtt-port',
    description: 'port of the embedded broker (1884, so it never collides with a system Mosquitto on 1883); 0 = any free port',
    schema: cfg.port(1884),
  },
  mqttHost: { env: 'MQTT_HOST', flag: 'mqtt-host', description: 'address the embedded broker binds to', schema: cfg.string('0.0.0.0') },
  mqttShareGroup: {
    env: 'MQTT_SHARE_GROUP',
    flag: 'mqtt-share-group',
    description: 'MQTT 5 shared-subscription group that hub replicas split device traffic in (external broker only)',
    schema: cfg.string('shelfsight-hub'),
  },
  mqttAuth: {
    env: 'MQTT_AUTH',
    flag: 'mqtt-auth',
    description:
      'on = the embedded broker admits only provisioned devices (username = client id = device id, password from POST /devices/:id/credentials) and lets each publish/subscribe only under its own id; off = open broker (demo, tests). Needs HUB_API_KEY. An external broker (MQTT_URL) enforces its own auth',
    schema: z.enum(['on', 'off']).default('off'),
  },
  hubApiKey: {
    env: 'HUB_API_KEY',
    flag: 'hub-api-key',
    description: 'admin API key (at least 16 characters) for the operator endpoints such as device credentials, sent as the X-API-Key header; unset = those endpoints refuse every request',
    schema: z.string().min(16, 'at least 16 characters').optional(),
  },
  minConfidence: {
    env: 'MIN_CONFIDENCE',
    flag: 'min-confidence',
    description: 'detections below this confidence are stored but do not change inventory',
    schema: z.coerce.number().min(0).max(1).default(0.5),
  },
  staleAfterS: {
    env: 'STALE_AFTER_S',
    flag: 'stale-after-s',
    description: 'a location not observed for this many seconds is reported as stale (left out of counts unless includeStale=true)',
    schema: cfg.int(24 * 3600, 1),
  },
  retentionDays: {
    env: 'DETECTION_RETENTION_DAYS',
    flag: 'detection-retention-days',
    description: 'raw detections older than this (by arrival) are deleted; 0 keeps them forever. Inventory state and history are kept',
    schema: cfg.number(30, 0),
  },
  ingestBatchRows: {
    env: 'INGEST_BATCH_ROWS',
    flag: 'ingest-batch-rows',
    description: 'most detections written in one database transaction',
    schema: cfg.int(2000, 1),
  },
  ingestMaxPending: {
    env: 'INGEST_MAX_PENDING',
    flag: 'ingest-max-pending',
    description: 'most detections held in memory awaiting commit; beyond it batches are refused unacknowledged (devices keep and resend them)',
    schema: cfg.int(50000, 1),
  },
  samplesPerDevicePerDay: {
    env: 'SAMPLES_PER_DEVICE_PER_DAY',
    flag: 'samples-per-device-per-day',
    description: 'most samples the hub stores per device per UTC day (frames an operator requested do not count); beyond it samples are refused (reason quota); 0 = none',
    schema: cfg.int(1000, 0),
  },
  sampleRetentionDays: {
    env: 'SAMPLE_RETENTION_DAYS',
    flag: 'sample-retention-days',
    description: 'unlabelled samples (pending or skipped) are deleted this long after arrival, with thumbnails no other sample uses; labelled samples are kept',
    schema: cfg.number(14, 0.001),
  },
  sampleQueueMax: {
    env: 'SAMPLE_QUEUE_MAX',
    flag: 'sample-queue-max',
    description: 'samples held in memory awaiting their own writer (separate from detection ingest); beyond it samples are dropped (reason queue_full; samples are best effort)',
    schema: cfg.int(500, 1),
  },
  similarIndexMax: {
    env: 'SIMILAR_INDEX_MAX',
    flag: 'similar-index-max',
    description: 'most embeddings per backbone held in the in-memory similar-samples index (newest kept; about 0.6 KB each for 512-d: int8 vector + 32-d int8 projection)',
    schema: cfg.int(200_000, 1),
  },
  disagreementWindowS: {
    env: 'DISAGREEMENT_WINDOW_S',
    flag: 'disagreement-window-s',
    description: 'confident detections of one location by different devices with different categories captured within this many seconds are disputed (too short for a real restock) and their frames requested; 0 = off',
    schema: cfg.number(120, 0),
  },
  disagreementFramesPerMinute: {
    env: 'DISAGREEMENT_FRAMES_PER_MINUTE',
    flag: 'disagreement-frames-per-minute',
    description: 'most frames the hub requests per minute for disputed detections (a noisy fleet must not flood the sample queue); beyond it detections are still marked disputed',
    schema: cfg.int(60, 0),
  },
  dbPoolSize: { env: 'DB_POOL_SIZE', flag: 'db-pool-size', description: 'database connections of this hub', schema: cfg.int(8, 1) },
  gateMaxOverallDrop: {
    env: 'GATE_MAX_OVERALL_DROP',
    flag: 'gate-max-overall-drop',
    description: 'model gate: a version whose overall accuracy on the frozen evaluation set is more than this below the best releasable version of its category set is not releasable (0..1)',
    schema: z.coerce.number().min(0).max(1).default(0.02),
  },
  gateMaxCategoryDrop: {
    env: 'GATE_MAX_CATEGORY_DROP',
    flag: 'gate-max-category-drop',
    description: 'model gate: nor is one whose accuracy on any single category drops by more than this (0..1)',
    schema: z.coerce.number().min(0).max(1).default(0.05),
  },
  modelUploadMaxBytes: {
    env: 'MODEL_UPLOAD_MAX_BYTES',
    flag: 'model-upload-max-bytes',
    description: 'largest model artifact archive POST /models accepts (artifact plus training rows)',
    schema: cfg.int(512 * 1024 * 1024, 1024),
  },
  rescoreBatchRows: {
    env: 'RESCORE_BATCH_ROWS',
    flag: 'rescore-batch-rows',
    description: 'pending samples re-scored per batch after a model version is registered (bounds memory)',
    schema: cfg.int(500, 1),
  },
} as const;

export type HubConfig = ConfigOf<typeof HUB_CONFIG_SPEC>;

export const HUB_CONFIG = Symbol('HUB_CONFIG');

export function loadHubConfig(flags: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): HubConfig {
  const config = loadConfig(HUB_CONFIG_SPEC, flags, env);
  if (config.mqttAuth === 'on' && !config.hubApiKey) {
    throw new ConfigError('invalid configuration:\n  MQTT_AUTH=on needs HUB_API_KEY: without it no device credential can be provisioned, so no device could connect');
  }
  return config;
}
