import { z } from 'zod';
import { cfg, loadConfig, type ConfigOf } from '@shelfsight/common';
import { trustProxyValue } from '../auth/trust-proxy';
import { BLOB_CONFIG_SPEC } from '../blobs/blob-config';

/** Every setting of the hub: environment variable, CLI flag, meaning, default. */
export const HUB_CONFIG_SPEC = {
  httpPort: { env: 'HTTP_PORT', flag: 'http-port', description: 'port of the REST API', schema: cfg.port(3000) },
  httpHost: { env: 'HTTP_HOST', flag: 'http-host', description: 'address the REST API binds to', schema: cfg.string('0.0.0.0') },
  databaseUrl: {
    env: 'DATABASE_URL',
    flag: 'database-url',
    description: 'PostgreSQL URL; unset = embedded PGlite in DATA_DIR',
    schema: cfg.url(['postgres', 'postgresql']),
    secret: true,
  },
  dataDir: { env: 'DATA_DIR', flag: 'data-dir', description: 'folder for the embedded database and hub files', schema: cfg.string('.data/hub') },
  ...BLOB_CONFIG_SPEC,
  mqttUrl: {
    env: 'MQTT_URL',
    flag: 'mqtt-url',
    description: 'external MQTT broker (mqtt://host:port); unset = embedded aedes broker',
    schema: cfg.url(['mqtt', 'mqtts', 'tcp', 'ws', 'wss']),
    secret: true,
  },
  mqttPort: {
    env: 'MQTT_PORT',
    flag: 'mqtt-port',
    description: 'port of the embedded broker (1884, so it never collides with a system Mosquitto on 1883); 0 = any free port',
    schema: cfg.port(1884),
  },
  mqttHost: { env: 'MQTT_HOST', flag: 'mqtt-host', description: 'address the embedded broker binds to', schema: cfg.string('0.0.0.0') },
  mqttTlsCert: {
    env: 'MQTT_TLS_CERT',
    flag: 'mqtt-tls-cert',
    description: 'embedded broker: PEM certificate (chain) file; with MQTT_TLS_KEY the broker speaks MQTT over TLS only (mqtts://) on MQTT_PORT. Devices trust it through the CA that signed it',
    schema: cfg.optionalString(),
  },
  mqttTlsKey: { env: 'MQTT_TLS_KEY', flag: 'mqtt-tls-key', description: 'embedded broker: PEM private key file of MQTT_TLS_CERT', schema: cfg.optionalString() },
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
      'on = the embedded broker admits only provisioned devices (username = client id = device id, password from `shelf device add` or POST /devices/:id/credentials) and lets each publish/subscribe only under its own id; off = open broker, any client may act as any device (the demo `shelf start` and the tests default to off). An external broker (MQTT_URL) enforces its own auth',
    schema: z.enum(['on', 'off']).default('on'),
  },
  hubApiKey: {
    env: 'HUB_API_KEY',
    flag: 'hub-api-key',
    description:
      'bootstrap admin API key (at least 16 characters), sent as the X-API-Key header (or Authorization: Bearer); more keys come from POST /api-keys or `shelf key create`. Unset and no key in the database = the hub creates an admin key at first start and writes it to DATA_DIR/admin-api-key (mode 0600)',
    schema: z.string().min(16, 'at least 16 characters').optional(),
    secret: true,
  },
  metricsToken: {
    env: 'METRICS_TOKEN',
    flag: 'metrics-token',
    description: 'scrape token for GET /metrics, sent as Authorization: Bearer <token>; unset = /metrics needs an API key (any role)',
    schema: z.string().min(16, 'at least 16 characters').optional(),
    secret: true,
  },
  httpMaxBodyBytes: {
    env: 'HTTP_MAX_BODY_BYTES',
    flag: 'http-max-body-bytes',
    description: 'largest REST request body accepted; larger ones are refused with 413 before they are read whole',
    schema: cfg.int(10 * 1024 * 1024, 1024),
  },
  httpRatePerMinute: {
    env: 'HTTP_RATE_PER_MINUTE',
    flag: 'http-rate-per-minute',
    description: 'REST requests one API key (or, without a key, one address) may make per minute; beyond it 429',
    schema: cfg.int(6000, 1),
  },
  authFailuresPerMinute: {
    env: 'AUTH_FAILURES_PER_MINUTE',
    flag: 'auth-failures-per-minute',
    description: 'refused API keys (unknown, wrong, expired, revoked) one client address may present per minute; beyond it every request with a key from that address is answered 429 for a minute, without looking at the key',
    schema: cfg.int(30, 1),
  },
  trustProxy: {
    env: 'TRUST_PROXY',
    flag: 'trust-proxy',
    description:
      'behind a reverse proxy: which hops to believe about the client address (X-Forwarded-For), so HTTP_RATE_PER_MINUTE, AUTH_FAILURES_PER_MINUTE and the audit key on the real client, not the proxy. off (default: the TCP peer) | a hop count (e.g. 1) | comma-separated proxy addresses, CIDR ranges or loopback, linklocal, uniquelocal. Never "true": every client could then pick its own address',
    schema: z
      .string()
      .default('off')
      .superRefine((v, ctx) => {
        try {
          trustProxyValue(v);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
  },
  auditDeniedIntervalS: {
    env: 'AUDIT_DENIED_INTERVAL_S',
    flag: 'audit-denied-interval-s',
    description: 'denied requests (401, 403, 429) are audited as at most one row per client address and reason in this many seconds, with the number of requests it stands for',
    schema: cfg.int(60, 1),
  },
  mqttMaxPacketBytes: {
    env: 'MQTT_MAX_PACKET_BYTES',
    flag: 'mqtt-max-packet-bytes',
    description: 'embedded broker: largest MQTT packet accepted; a client announcing a larger one is disconnected before it is buffered',
    schema: cfg.int(8 * 1024 * 1024, 1024),
  },
  mqttRatePerS: {
    env: 'MQTT_RATE_PER_S',
    flag: 'mqtt-rate-per-s',
    description: 'embedded broker: sustained publishes per second one client may make (token bucket); excess is dropped and counted, a client that keeps exceeding it is disconnected',
    schema: cfg.number(200, 1),
  },
  mqttBurst: {
    env: 'MQTT_BURST',
    flag: 'mqtt-burst',
    description: 'embedded broker: publishes one client may make at once above MQTT_RATE_PER_S (the token bucket size)',
    schema: cfg.int(1000, 1),
  },
  mqttHubQueueBytes: {
    env: 'MQTT_HUB_QUEUE_BYTES',
    flag: 'mqtt-hub-queue-bytes',
    description: "embedded broker: bytes of messages queued toward a hub's connection (the hub behind) beyond which device detections are not forwarded to it, counted as shelfsight_mqtt_refused_total{reason=\"hub_queue_full\"}; the devices keep them and send them again (as Mosquitto's max_queued_bytes)",
    schema: cfg.int(8 * 1024 * 1024, 64 * 1024),
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
    description: 'most detections held in memory awaiting commit; beyond it batches are deferred: the ack tells the device to send them again after INGEST_RETRY_AFTER_MS (it keeps them)',
    schema: cfg.int(50000, 1),
  },
  ingestMaxPendingBytes: {
    env: 'INGEST_MAX_PENDING_BYTES',
    flag: 'ingest-max-pending-bytes',
    description: 'most bytes of detections (estimated from their JSON) held in memory awaiting commit; beyond it batches are deferred like past INGEST_MAX_PENDING',
    schema: cfg.int(16 * 1024 * 1024, 1024),
  },
  ingestRetryAfterMs: {
    env: 'INGEST_RETRY_AFTER_MS',
    flag: 'ingest-retry-after-ms',
    description: 'how long a device whose batch was deferred is told to wait before sending again, ms (devices add ±25% jitter)',
    schema: cfg.int(1000, 0),
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
    description: 'most frames the hub requests per minute for disputed detections (a noisy fleet must not flood the sample queue); beyond it disputes wait unmarked for the next minute\'s budget (0 = none are marked)',
    schema: cfg.int(60, 0),
  },
  dbPoolSize: { env: 'DB_POOL_SIZE', flag: 'db-pool-size', description: 'database connections of this hub', schema: cfg.int(8, 1) },
  trainingWorker: {
    env: 'TRAINING_WORKER',
    flag: 'training-worker',
    description: 'child = the hub runs one training worker process beside it (restarted if it dies, stopped with the hub); off = this hub only queues jobs (replicas; workers run as `shelf worker`)',
    schema: z.enum(['child', 'off']).default('child'),
  },
  trainingHeartbeatTimeoutS: {
    env: 'TRAINING_HEARTBEAT_TIMEOUT_S',
    flag: 'training-heartbeat-timeout-s',
    description: 'a running training job whose worker has not reported for this many seconds ends as failed: interrupted',
    schema: cfg.int(30, 2),
  },
  trainingBackbone: {
    env: 'TRAINING_BACKBONE',
    flag: 'training-backbone',
    description: 'backbone (folder, built-in or catalogue name) for training jobs on a dataset base when neither the request nor a registered version names one',
    schema: z.string().min(1).optional(),
  },
  trainingDatasetRoots: {
    env: 'TRAINING_DATASET_ROOTS',
    flag: 'training-dataset-roots',
    description:
      'folders (comma-separated) a training job\u2019s base.dataset may be in; a relative dataset resolves in the first. Anything else (.., absolute paths elsewhere, symlinks out, /proc) is refused. Unset = DATA_DIR/datasets',
    schema: cfg.optionalString(),
  },
  trainingBackboneRoots: {
    env: 'TRAINING_BACKBONE_ROOTS',
    flag: 'training-backbone-roots',
    description:
      'folders (comma-separated) a training job\u2019s backbone folder may be in, besides built-in and catalogue names and TRAINING_BACKBONE; URLs are refused. Unset = DATA_DIR/backbones',
    schema: cfg.optionalString(),
  },
  gateMaxOverallDrop: {
    env: 'GATE_MAX_OVERALL_DROP',
    flag: 'gate-max-overall-drop',
    description: 'model gate: a version whose overall accuracy, on the rows of the verified categories it shares with its reference (parent, or the version the fleet runs), is more than this below the reference\u2019s is not releasable (0..1)',
    schema: z.coerce.number().min(0).max(1).default(0.02),
  },
  gateMaxCategoryDrop: {
    env: 'GATE_MAX_CATEGORY_DROP',
    flag: 'gate-max-category-drop',
    description: 'model gate: nor is one whose accuracy on any single category with at least GATE_MIN_EVAL_ROWS rows drops by more than this, significant or not (0..1)',
    schema: z.coerce.number().min(0).max(1).default(0.05),
  },
  gateAlpha: {
    env: 'GATE_ALPHA',
    flag: 'gate-alpha',
    description: 'model gate: a category on which the version is significantly worse than its reference (exact one-sided McNemar test on the same rows, p below this) regresses, whatever its size',
    schema: z.coerce.number().gt(0).lt(1).default(0.05),
  },
  gateMinEvalRows: {
    env: 'GATE_MIN_EVAL_ROWS',
    flag: 'gate-min-eval-rows',
    description: 'model gate: a category with fewer evaluation rows than this is unverified, and its version not releasable unless an operator overrides with a written reason (POST /models/:version/override)',
    schema: cfg.int(20, 1),
  },
  evalHoldoutPercent: {
    env: 'EVAL_HOLDOUT_PERCENT',
    flag: 'eval-holdout-percent',
    description: 'share of operator-labelled samples (chosen by a hash of the sample id) held out for the gate\u2019s evaluation and never trained on (0..100)',
    schema: z.coerce.number().min(0).max(100).default(20),
  },
  embeddingCheckPercent: {
    env: 'EMBEDDING_CHECK_PERCENT',
    flag: 'embedding-check-percent',
    description: 'training jobs re-embed this share (0..100, drawn afresh per job) of each device\u2019s labelled samples from their stored thumbnails and leave out those whose sent embedding disagrees; a device caught once is checked in full',
    schema: z.coerce.number().min(0).max(100).default(20),
  },
  embeddingCheckAllBelow: {
    env: 'EMBEDDING_CHECK_ALL_BELOW',
    flag: 'embedding-check-all-below',
    description: 'a device with at most this many labelled samples in a training job has all of them checked against their thumbnails',
    schema: cfg.int(100, 0),
  },
  embeddingMaxCosineDistance: {
    env: 'EMBEDDING_MAX_COSINE_DISTANCE',
    flag: 'embedding-max-cosine-distance',
    description: 'a labelled sample whose sent embedding is further than this (cosine distance) from its thumbnail\u2019s is left out of training and reported per device (a frame and its own thumbnail: up to 0.04 on the reference backbone; another photo of the same product: 0.15 or more)',
    schema: z.coerce.number().gt(0).max(2).default(0.1),
  },
  modelUploadMaxBytes: {
    env: 'MODEL_UPLOAD_MAX_BYTES',
    flag: 'model-upload-max-bytes',
    description: 'largest model artifact archive POST /models accepts (artifact plus training rows)',
    schema: cfg.int(512 * 1024 * 1024, 1024),
  },
  modelUploadMaxInflatedBytes: {
    env: 'MODEL_UPLOAD_MAX_INFLATED_BYTES',
    flag: 'model-upload-max-inflated-bytes',
    description: 'largest tar a gzipped POST /models body may decompress to; it is decompressed as a stream and refused with 413 once its output passes this (a gzip bomb costs the hub this much, not what it would inflate to)',
    schema: cfg.int(512 * 1024 * 1024, 1024),
  },
  rolloutSigningKey: {
    env: 'ROLLOUT_SIGNING_KEY',
    flag: 'rollout-signing-key',
    description:
      'the release key rollout manifests and model commands are signed with: an Ed25519 private key (PKCS8 PEM, or base64 of its PKCS8 DER), e.g. from a secret store. Never stored in the database. Unset = ROLLOUT_RELEASE_KEY_FILE, else a key the hub generates in DATA_DIR/rollout-keys/release-key.pem (mode 0600). Devices accept it only while the root-signed key list (ROLLOUT_KEY_LIST_FILE) names it',
    schema: z.string().min(1).optional(),
    secret: true,
  },
  rolloutReleaseKeyFile: {
    env: 'ROLLOUT_RELEASE_KEY_FILE',
    flag: 'rollout-release-key-file',
    description: 'file holding the release key (PKCS8 PEM, mode 0600; `shelf keys release new`), read at start; used when ROLLOUT_SIGNING_KEY is unset',
    schema: cfg.optionalString(),
  },
  rolloutKeyListFile: {
    env: 'ROLLOUT_KEY_LIST_FILE',
    flag: 'rollout-key-list-file',
    description:
      'the root-signed release key list (`shelf keys list sign`), published to devices (retained MQTT, GET /rollouts/key-list); its root is the one devices are provisioned with. Unset = a demo root generated in DATA_DIR/rollout-keys signs a list of the hub\u2019s release key (fine for a demo; in production create an offline root with `shelf keys root init`)',
    schema: cfg.optionalString(),
  },
  rolloutDownloadTokenSecret: {
    env: 'ROLLOUT_DOWNLOAD_TOKEN_SECRET',
    flag: 'rollout-download-token-secret',
    description: 'secret (at least 32 characters) the artifact download tokens in offers are MACed with; every replica needs the same. Unset = one generated in DATA_DIR/download-token-secret (mode 0600)',
    schema: z.string().min(32).optional(),
    secret: true,
  },
  rolloutTickMs: {
    env: 'ROLLOUT_TICK_MS',
    flag: 'rollout-tick-ms',
    description: 'how often the stage engine checks running rollouts (soak time, success share, abort criteria); one replica at a time does it (advisory lock)',
    schema: cfg.int(2000, 50),
  },
  rolloutOfferTtlHours: {
    env: 'ROLLOUT_OFFER_TTL_HOURS',
    flag: 'rollout-offer-ttl-hours',
    description: 'signed rollout manifests expire this long after signing; an offer re-sent later is signed again with a new release counter',
    schema: cfg.number(7 * 24, 0.01),
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
  return loadConfig(HUB_CONFIG_SPEC, flags, env);
}
