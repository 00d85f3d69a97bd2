import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LABELS_FILE, MANIFEST_FILE, OUTPUTS_FILE, WEIGHTS_FILE, type ArtifactFiles, type TrainingRows } from '@shelfsight/contracts';
import type { PrismaClient } from '@shelfsight/db';
import type { BlobStore } from '../../blobs/blob-store';
import { createModelRegistry } from '../../models/models.service';

export interface TrainedVersion {
  artifactDir: string;
  rows: TrainingRows;
  parent?: string;
  lineage: { jobId: string; base: Record<string, unknown>; sampleIds: string[]; baseRows: number; sampleRows: number };
  createdBy: string;
}

export interface RegisteredVersion {
  version: string;
  releasable: boolean | null;
  gateReason: string | null;
  metrics: unknown;
}

export interface GateTolerances {
  gateMaxOverallDrop: number;
  gateMaxCategoryDrop: number;
}

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
    registeredBy: `job:${v.lineage.jobId}`,
  });
  return { version: model.version, releasable: model.releasable, gateReason: model.gateReason, metrics: (model as { metrics?: unknown }).metrics ?? null };
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
