import { hostname } from 'node:os';
import { z } from 'zod';
import { cfg, loadConfig, type ConfigOf } from '@shelfsight/common';
import { BLOB_CONFIG_SPEC } from '../../blobs/blob-config';
import { HUB_CONFIG_SPEC } from '../../config/hub-config';

/** Settings of a training worker (`shelf worker`): the hub's database and blob store, plus its own (on another machine: DATABASE_URL and BLOB_STORE=s3 with the bucket settings). */
export const WORKER_CONFIG_SPEC = {
  databaseUrl: { ...HUB_CONFIG_SPEC.databaseUrl, description: 'PostgreSQL URL of the hub (the embedded hub passes its own)', schema: z.string({ error: 'required' }).regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL') },
  dataDir: { ...HUB_CONFIG_SPEC.dataDir, description: 'folder for the worker\u2019s scratch files (and its blobs when BLOB_STORE=fs: then the hub\u2019s DATA_DIR)' },
  ...BLOB_CONFIG_SPEC,
  trainingHeartbeatTimeoutS: HUB_CONFIG_SPEC.trainingHeartbeatTimeoutS,
  trainingBackbone: HUB_CONFIG_SPEC.trainingBackbone,
  trainingDatasetRoots: HUB_CONFIG_SPEC.trainingDatasetRoots,
  trainingBackboneRoots: HUB_CONFIG_SPEC.trainingBackboneRoots,
  gateMaxOverallDrop: HUB_CONFIG_SPEC.gateMaxOverallDrop,
  gateMaxCategoryDrop: HUB_CONFIG_SPEC.gateMaxCategoryDrop,
  gateAlpha: HUB_CONFIG_SPEC.gateAlpha,
  gateMinEvalRows: HUB_CONFIG_SPEC.gateMinEvalRows,
  evalHoldoutPercent: HUB_CONFIG_SPEC.evalHoldoutPercent,
  embeddingCheckPercent: HUB_CONFIG_SPEC.embeddingCheckPercent,
  embeddingCheckAllBelow: HUB_CONFIG_SPEC.embeddingCheckAllBelow,
  embeddingMaxCosineDistance: HUB_CONFIG_SPEC.embeddingMaxCosineDistance,
  workerId: { env: 'WORKER_ID', flag: 'worker-id', description: 'this worker\u2019s name in job records (default host-pid)', schema: cfg.optionalString() },
  heartbeatS: { env: 'TRAINING_HEARTBEAT_S', flag: 'heartbeat-s', description: 'seconds between a running job\u2019s heartbeats (progress, cancel check)', schema: z.coerce.number().min(0.1).max(60).default(1) },
} as const;

export type WorkerConfig = Omit<ConfigOf<typeof WORKER_CONFIG_SPEC>, 'workerId'> & { workerId: string };

export function loadWorkerConfig(flags: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const c = loadConfig(WORKER_CONFIG_SPEC, flags, env);
  return { ...c, workerId: c.workerId ?? `${hostname()}-${process.pid}` };
}
