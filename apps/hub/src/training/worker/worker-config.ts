import { hostname } from 'node:os';
import { z } from 'zod';
import { cfg, loadConfig, type ConfigOf } from '@shelfsight/common';
import { HUB_CONFIG_SPEC } from '../../config/hub-config';

/** Settings of a training worker (`shelf worker`): the hub's database and data folder, plus its own. */
export const WORKER_CONFIG_SPEC = {
  databaseUrl: { ...HUB_CONFIG_SPEC.databaseUrl, description: 'PostgreSQL URL of the hub (the embedded hub passes its own)', schema: z.string({ error: 'required' }).regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL') },
  dataDir: HUB_CONFIG_SPEC.dataDir,
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
