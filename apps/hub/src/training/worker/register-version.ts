import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LABELS_FILE, MANIFEST_FILE, OUTPUTS_FILE, WEIGHTS_FILE, type ArtifactFiles, type TrainingRows } from '@shelfsight/contracts';
import type { PrismaClient } from '@shelfsight/db';
import type { BlobStore } from '../../blobs/blob-store';
import { createModelRegistry, type RegistryGateConfig } from '../../models/models.service';
import { TrainingJobsRepository } from '../training-jobs.repository';

export interface TrainedVersion {
  artifactDir: string;
  rows: TrainingRows;
  parent?: string;
  /** The rows came from the hub's data (a dataset base): their testing split may freeze evaluation rows (default no). */
  rowsFromHubData?: boolean;
  lineage: { jobId: string; base: Record<string, unknown>; sampleIds: string[]; baseRows: number; sampleRows: number };
  createdBy: string;
}

export interface RegisteredVersion {
  version: string;
  releasable: boolean | null;
  gateReason: string | null;
  metrics: unknown;
  /** The gate's judgement (reference, per-category before/after/n/p). */
  gate: unknown;
}

/** The registry's gate settings as the worker has them (GATE_*, EVAL_HOLDOUT_PERCENT). */
export type GateTolerances = RegistryGateConfig;

/**
 * The one place a job hands its result to the model registry (helper l2b's service):
 * verification without TensorFlow, artifact and training rows as blobs, evaluation on the
 * category set's frozen set, the gate, lineage, and the backlog re-score the hub picks up.
 */
export async function registerTrainedVersion(db: PrismaClient, blobs: BlobStore, gate: GateTolerances, v: TrainedVersion): Promise<RegisteredVersion> {
  const files = await readArtifactFiles(v.artifactDir);
  const { model } = await createModelRegistry({ prisma: db, blobs, gate }).register({
    files,
    trainingSet: v.rows,
    lineage: { ...(v.parent ? { parent: v.parent } : {}), base: { ...v.lineage.base, baseRows: v.lineage.baseRows, sampleRows: v.lineage.sampleRows }, sampleIds: v.lineage.sampleIds, jobId: v.lineage.jobId },
    source: 'job',
    rowsFromHubData: v.rowsFromHubData === true,
    registeredBy: `job:${v.lineage.jobId}`,
  });
  return { version: model.version, releasable: model.releasable, gateReason: model.gateReason, metrics: model.metrics, gate: model.gate };
}

/** A job's registration found the job no longer its worker's running job (swept as interrupted): nothing was registered. */
export class TrainingJobLostError extends Error {
  override name = 'TrainingJobLostError';
}

/**
 * Register a job's version and end the job as done with it, in one transaction on the
 * job's row, locked first (FOR UPDATE). A sweep that would mark the job interrupted waits
 * for the transaction and then no longer finds it running, so a registered version is
 * always linked to its job; a job swept before registration started registers nothing
 * ({@link TrainingJobLostError}).
 */
export async function registerAndCompleteJob(
  db: PrismaClient,
  blobs: BlobStore,
  gate: GateTolerances,
  job: { jobId: string; workerId: string },
  v: TrainedVersion,
  resultOf: (registered: RegisteredVersion) => Record<string, unknown>,
): Promise<{ registered: RegisteredVersion; result: Record<string, unknown> }> {
  const id = BigInt(job.jobId);
  return db.$transaction(
    async (tx) => {
      const txdb = tx as unknown as PrismaClient;
      const jobs = new TrainingJobsRepository(txdb);
      if (!(await jobs.lockRunning(id, job.workerId))) throw new TrainingJobLostError(`training job ${job.jobId} is no longer running on ${job.workerId}: not registered`);
      const registered = await registerTrainedVersion(txdb, blobs, gate, v);
      const result = resultOf(registered);
      if (!(await jobs.finish(id, job.workerId, { status: 'done', resultVersion: registered.version, result }))) {
        throw new TrainingJobLostError(`training job ${job.jobId} could not be completed: not registered`);
      }
      return { registered, result };
    },
    { maxWait: 30_000, timeout: 120_000 },
  );
}

async function readArtifactFiles(dir: string): Promise<ArtifactFiles> {
  const outputs = await readFile(join(dir, OUTPUTS_FILE)).catch(() => undefined);
  return {
    manifest: await readFile(join(dir, MANIFEST_FILE)),
    labels: await readFile(join(dir, LABELS_FILE)),
    weights: await readFile(join(dir, WEIGHTS_FILE)),
    ...(outputs ? { outputs } : {}),
  };
}
