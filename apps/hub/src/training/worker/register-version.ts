import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  encodeTrainingRows,
  LABELS_FILE,
  MANIFEST_FILE,
  OUTPUTS_FILE,
  rowCount,
  verifyArtifact,
  WEIGHTS_FILE,
  type ArtifactFiles,
  type TrainingRows,
} from '@shelfsight/contracts';
import type { PrismaClient } from '@shelfsight/db';
import type { BlobStore } from '../../blobs/blob-store';

export interface TrainedVersion {
  artifactDir: string;
  rows: TrainingRows;
  parent?: string;
  lineage: { jobId: string; base: unknown; sampleIds: string[]; baseRows: number; sampleRows: number };
  createdBy: string;
}

export interface RegisteredVersion {
  version: string;
  releasable: boolean | null;
  gateReason: string | null;
}

/**
 * The one place a job hands its result to the model registry. The registry's service
 * (evaluation on the frozen set, gate) is built on branch l2b-registry; until it is
 * merged this stores the artifact files and training rows as blobs and records the
 * version unevaluated (releasable NULL), so later jobs can use it as a base.
 */
export async function registerTrainedVersion(db: PrismaClient, blobs: BlobStore, v: TrainedVersion): Promise<RegisteredVersion> {
  const files = await readArtifactFiles(v.artifactDir);
  const { manifest, labels } = verifyArtifact(files);
  const stored: Record<string, string> = {};
  for (const [name, data] of [
    [MANIFEST_FILE, files.manifest],
    [LABELS_FILE, files.labels],
    [WEIGHTS_FILE, files.weights],
    ...(files.outputs ? [[OUTPUTS_FILE, files.outputs] as const] : []),
  ] as const) {
    stored[name] = (await blobs.put(data)).sha256;
  }
  const artifact = await blobs.put(Buffer.from(JSON.stringify({ files: stored })));
  const trainingSet = await blobs.put(encodeTrainingRows(v.rows));
  const categorySet = createHash('sha256').update([...labels].sort().join('\n')).digest('hex');
  const gateReason = 'not evaluated: the registry service (evaluation set, gate) is not available yet';
  await db.$executeRaw`
    INSERT INTO model_versions (version, backbone_id, backbone_checksum, labels, category_set, head_type, manifest, artifact_sha256, artifact_bytes,
      training_set_sha256, training_set_rows, parent_version, lineage, releasable, gate_reason, source, registered_by, created_at)
    VALUES (${manifest.version}, ${manifest.backbone.id}, ${manifest.backbone.checksum}, ${JSON.stringify(labels)}::jsonb, ${categorySet}, ${manifest.head.type},
      ${files.manifest.toString('utf8')}::jsonb, ${artifact.sha256}, ${artifact.bytes}, ${trainingSet.sha256}, ${rowCount(v.rows)}, ${v.parent ?? null},
      ${JSON.stringify(v.lineage)}::jsonb, NULL, ${gateReason}, 'job', ${v.createdBy}, ${new Date(manifest.createdAt)})
    ON CONFLICT (version) DO NOTHING`;
  return { version: manifest.version, releasable: null, gateReason };
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
