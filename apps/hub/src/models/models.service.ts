import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  ArtifactVerificationError,
  decodeTrainingRows,
  encodeTrainingRows,
  LABELS_FILE,
  MANIFEST_FILE,
  OUTPUTS_FILE,
  packArtifact,
  selectRows,
  TRAINING_ROWS_FILE,
  TrainingRowsFormatError,
  unpackArtifact,
  verifyArtifact,
  WEIGHTS_FILE,
  type ArtifactFiles,
  type TrainingRows,
  type VerifiedArtifact,
} from '@shelfsight/contracts';
import type { PrismaClient } from '@shelfsight/db';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { HUB_CONFIG } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { RESCORE_TRIGGER, type RescoreTrigger } from './backlog-rescorer';
import { confusionMatrixSvg } from '@shelfsight/common';
import { categorySetOf, evaluateHead, type ModelMetrics } from './evaluation';
import { ModelGate, type GateTolerance } from './model-gate';
import type { ListModelsQuery, ModelComparisonDto, ModelLineage, ModelSource, ModelVersionDto, ModelVersionSummaryDto } from './models.dto';
import { IncomparableModelsError, InvalidModelArtifactError, ModelVersionConflictError, ModelVersionNotFoundError } from './models.error';
import { ModelsRepository, type EvaluationSetRow, type ModelVersionRow } from './models.repository';

/** What a registration may say about where the version came from (beyond its manifest). */
export interface ModelLineageInput {
  parent?: string;
  base?: Record<string, unknown>;
  sampleIds?: string[];
  jobId?: string;
}

export interface RegisterModelInput {
  /** The artifact folder's files: manifest.json, head.bin, labels.txt, outputs.txt when present. */
  files: ArtifactFiles;
  /** The training rows (training-rows.bin, `@shelfsight/contracts` encodeTrainingRows) the head was trained on, when known. */
  trainingSet?: Buffer | TrainingRows;
  lineage?: ModelLineageInput;
  source: ModelSource;
  /** Principal id (`@Actor()`), `job:<id>` for a training job. */
  registeredBy?: string;
}

export interface RegisterModelResult {
  model: ModelVersionDto;
  /** False when the same artifact was registered before under this version (nothing changed). */
  created: boolean;
}

/**
 * The model registry. `register` is the one way a version enters it — from `POST /models`
 * (an artifact trained elsewhere with `shelf train`), from the demo at start, and
 * in-process from a training-job worker: `createModelRegistry({ prisma, blobs, gate })
 * .register({ files, trainingSet, lineage, source: 'job', registeredBy })` (no Nest app
 * needed; the hub picks up the queued backlog re-score). It verifies the artifact without
 * TensorFlow, stores it (canonical tar) and its training rows as blobs, freezes the
 * category set's evaluation set on its first registration with training rows, scores the
 * version on it, runs the gate, records everything, upserts the labels as categories,
 * and schedules the backlog re-score.
 */
@Injectable()
export class ModelsService {
  private readonly log = new Logger('Models');
  private readonly gate: ModelGate;

  constructor(
    private readonly repo: ModelsRepository,
    @Inject(RESCORE_TRIGGER) private readonly rescorer: RescoreTrigger,
    private readonly metrics: HubMetrics,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(HUB_CONFIG) config: { gateMaxOverallDrop: number; gateMaxCategoryDrop: number },
  ) {
    const tolerance: GateTolerance = { maxOverallDrop: config.gateMaxOverallDrop, maxCategoryDrop: config.gateMaxCategoryDrop };
    this.gate = new ModelGate(tolerance);
  }

  /** `POST /models`: a tar (or tar.gz) of the artifact folder, training rows included when present. */
  async registerArchive(body: Buffer, opts: { parent?: string; registeredBy: string }): Promise<RegisterModelResult> {
    const archive = await this.refuseInvalid(() => unpackArtifact(body));
    const { trainingRows, ...files } = archive;
    return this.register({ files, trainingSet: trainingRows, lineage: opts.parent ? { parent: opts.parent } : undefined, source: 'upload', registeredBy: opts.registeredBy });
  }

  /** Register an artifact folder on this machine (the demo's model at `npm start`). */
  async registerFolder(dir: string, opts: { source: ModelSource; registeredBy?: string }): Promise<RegisterModelResult> {
    const optional = (name: string) => readFile(join(dir, name)).catch(() => undefined);
    let files: ArtifactFiles;
    try {
      files = { manifest: await readFile(join(dir, MANIFEST_FILE)), weights: await readFile(join(dir, WEIGHTS_FILE)), labels: await readFile(join(dir, LABELS_FILE)), outputs: await optional(OUTPUTS_FILE) };
    } catch {
      throw this.refused('missing-file', `${dir} is not a complete artifact folder (${MANIFEST_FILE}, ${WEIGHTS_FILE}, ${LABELS_FILE})`);
    }
    return this.register({ files, trainingSet: await optional(TRAINING_ROWS_FILE), source: opts.source, registeredBy: opts.registeredBy });
  }

  async register(input: RegisterModelInput): Promise<RegisterModelResult> {
    const artifact = await this.refuseInvalid(async () => verifyArtifact(input.files));
    const { manifest, labels } = artifact;
    const rows = input.trainingSet ? this.checkTrainingRows(input.trainingSet, artifact) : undefined;
    const tar = await packArtifact(input.files);
    const stored = await this.blobs.put(tar);
    const existing = await this.repo.findVersion(manifest.version);
    if (existing) {
      if (existing.artifact_sha256 !== stored.sha256) {
        this.metrics.modelsRefused.inc({ reason: 'version-conflict' });
        throw new ModelVersionConflictError(manifest.version);
      }
      return { model: this.toDto(existing), created: false };
    }
    const trainingBlob = rows ? await this.blobs.put(Buffer.isBuffer(input.trainingSet) ? input.trainingSet : encodeTrainingRows(rows)) : undefined;
    const categorySet = categorySetOf(labels);
    const evalSet = await this.evaluationSetFor(categorySet, manifest.version, manifest.backbone.id, rows);
    const evaluated = evalSet ? await this.evaluate(artifact, evalSet, categorySet) : undefined;
    const trainedOn = evaluated && rows ? evaluationRowsTrainedOn(evaluated.rows, rows) : [];
    const metrics = evaluated ? { ...evaluated.metrics, ...(trainedOn.length > 0 ? { trainedOnRows: trainedOn.length } : {}) } : undefined;
    const best = metrics ? await this.repo.bestReleasable(categorySet, manifest.backbone.id, manifest.version) : undefined;
    const verdict =
      evalSet && !metrics
        ? { releasable: false, reason: `not evaluated: the frozen evaluation set of its category set has ${evalSet.embedding_dim}-d rows, the head takes ${artifact.head.spec.inputDim}` }
        : trainedOn.length > 0
          ? {
              releasable: false,
              reason: `not releasable: ${trainedOn.length} of the ${metrics!.rows} frozen evaluation rows were among its training or validation rows (e.g. ${trainedOn.slice(0, 3).join(', ')}): its metrics would be optimistic`,
            }
          : this.gate.judge(metrics, best);
    const lineage: ModelLineage = {
      parent: input.lineage?.parent ?? manifest.lineage?.parent ?? null,
      base: input.lineage?.base ?? baseSummary(manifest.training),
      sampleIds: input.lineage?.sampleIds ?? (rows?.ids ?? []).filter((id) => id.startsWith('sample:')).map((id) => id.slice('sample:'.length)),
      ...(input.lineage?.jobId ? { jobId: input.lineage.jobId } : {}),
    };
    await this.repo.insertVersion({
      version: manifest.version,
      backbone_id: manifest.backbone.id,
      backbone_checksum: manifest.backbone.checksum,
      labels,
      category_set: categorySet,
      head_type: manifest.head.members && manifest.head.members > 1 ? `${manifest.head.type}×${manifest.head.members}` : manifest.head.type,
      manifest: manifest as unknown as Record<string, unknown>,
      artifact_sha256: stored.sha256,
      artifact_bytes: stored.bytes,
      training_set_sha256: trainingBlob?.sha256 ?? null,
      training_set_rows: rows ? rows.label.length : null,
      parent_version: lineage.parent,
      lineage: lineage as unknown as Record<string, unknown>,
      metrics: metrics ?? null,
      releasable: verdict.releasable,
      gate_reason: verdict.reason,
      source: input.source,
      registered_by: input.registeredBy ?? null,
      created_at: new Date(manifest.createdAt),
    });
    await this.repo.addCategories(labels);
    this.metrics.modelsRegistered.inc({ source: input.source, releasable: String(verdict.releasable) });
    this.log.log(`registered ${manifest.version} (${input.source}, ${labels.length} categories, accuracy ${metrics ? metrics.accuracy.toFixed(3) : 'n/a'}): ${verdict.releasable ? 'releasable' : 'NOT releasable'} — ${verdict.reason}`);
    // Queued in the row (rescore_state); a hub process claims it, this one at once.
    this.rescorer.kick();
    return { model: this.toDto((await this.repo.findVersion(manifest.version)) as ModelVersionRow), created: true };
  }

  async list(query: ListModelsQuery): Promise<ModelVersionSummaryDto[]> {
    const rows = await this.repo.listVersions({ backboneId: query.backbone, categorySet: query.categorySet, limit: query.limit });
    return rows.map((r) => this.toSummary(r));
  }

  async get(version: string): Promise<ModelVersionDto> {
    return this.toDto(await this.row(version));
  }

  async confusionSvg(version: string): Promise<string> {
    const row = await this.row(version);
    if (!row.metrics) throw new IncomparableModelsError(`model version ${version} has not been evaluated (no frozen evaluation set for its category set)`);
    const m = row.metrics;
    return confusionMatrixSvg(m.labels, m.confusion, `${version} · accuracy ${(m.accuracy * 100).toFixed(1)}% on ${m.rows} frozen evaluation rows`);
  }

  /** The stored canonical artifact tar. */
  async artifact(version: string): Promise<{ sha256: string; bytes: number; stream: NodeJS.ReadableStream }> {
    const row = await this.row(version);
    const blob = await this.blobs.open(row.artifact_sha256);
    if (!blob) throw new ModelVersionNotFoundError(`${version} (artifact blob ${row.artifact_sha256} is missing)`);
    return { sha256: row.artifact_sha256, bytes: blob.bytes, stream: blob.stream };
  }

  async compare(a: string, b: string): Promise<ModelComparisonDto> {
    const [ra, rb] = [await this.row(a), await this.row(b)];
    if (ra.category_set !== rb.category_set) {
      throw new IncomparableModelsError(`${a} and ${b} have different category sets (${ra.labels.join(', ')} vs ${rb.labels.join(', ')}): no shared evaluation set`);
    }
    if (ra.backbone_id !== rb.backbone_id) {
      throw new IncomparableModelsError(`${a} and ${b} belong to different backbones (${ra.backbone_id}, ${rb.backbone_id}): no shared evaluation set`);
    }
    const ma = ra.metrics;
    const mb = rb.metrics;
    if (!ma || !mb) throw new IncomparableModelsError(`${!ma ? a : b} has not been evaluated on its category set's frozen evaluation set`);
    return {
      a,
      b,
      categorySet: ra.category_set,
      evaluationRows: mb.rows,
      overall: { a: ma.accuracy, b: mb.accuracy, delta: mb.accuracy - ma.accuracy },
      perCategory: mb.labels.map((category) => {
        const x = ma.perCategory[category]?.accuracy ?? 0;
        const y = mb.perCategory[category]?.accuracy ?? 0;
        return { category, rows: mb.perCategory[category]?.rows ?? 0, a: x, b: y, delta: y - x };
      }),
    };
  }

  private async row(version: string): Promise<ModelVersionRow> {
    const row = await this.repo.findVersion(version);
    if (!row) throw new ModelVersionNotFoundError(version);
    return row;
  }

  /**
   * The frozen evaluation set of the category set (for this backbone); frozen now from this
   * version's held-out testing rows (split 2) when the set has none yet. Only testing rows:
   * a trainer fits its weights on the training rows and picks its best epoch on the
   * validation rows (split 1), so scoring on either would flatter every version trained on
   * them. Testing rows are never seen by `trainModel` (nor by jobs, which keep a base's
   * split), so registry metrics and the gate are an honest estimate. Rows with a label
   * outside the set are left out. Later labelled samples are not added: a frozen set never
   * changes, so every version of the set is scored on exactly the same rows.
   */
  private async evaluationSetFor(categorySet: string, version: string, backboneId: string, rows: TrainingRows | undefined): Promise<EvaluationSetRow | undefined> {
    const frozen = await this.repo.evaluationSet(categorySet, backboneId);
    if (frozen || !rows) return frozen;
    const sorted = [...rows.labels].sort();
    const heldOut: number[] = [];
    for (let i = 0; i < rows.label.length; i++) if (rows.split[i] === TESTING_SPLIT) heldOut.push(i);
    if (heldOut.length === 0) return undefined;
    const picked = selectRows(rows, heldOut);
    const evalRows: TrainingRows = { ...picked, labels: sorted, label: Uint32Array.from(picked.label, (l) => sorted.indexOf(rows.labels[l] as string)) };
    const counts: Record<string, number> = Object.fromEntries(sorted.map((l) => [l, 0]));
    evalRows.label.forEach((l) => (counts[sorted[l] as string] = (counts[sorted[l] as string] as number) + 1));
    const blob = await this.blobs.put(encodeTrainingRows(evalRows));
    const set = await this.repo.freezeEvaluationSet({
      category_set: categorySet,
      labels: sorted,
      backbone_id: backboneId,
      embedding_dim: rows.dim,
      blob_sha256: blob.sha256,
      rows: heldOut.length,
      counts,
      frozen_by: version,
    });
    if (set.frozen_by === version) this.log.log(`froze the evaluation set of {${sorted.join(', ')}}: ${heldOut.length} held-out testing rows of ${version}`);
    return set;
  }

  private async evaluate(artifact: VerifiedArtifact, set: EvaluationSetRow, categorySet: string): Promise<{ metrics: ModelMetrics; rows: TrainingRows } | undefined> {
    if (set.embedding_dim !== artifact.head.spec.inputDim) return undefined;
    const bytes = await this.blobs.get(set.blob_sha256);
    if (!bytes) throw new Error(`evaluation set blob ${set.blob_sha256} of category set ${categorySet} is missing`);
    const rows = decodeTrainingRows(bytes);
    return { metrics: evaluateHead(artifact.head, artifact.labels, rows, { categorySet, frozenBy: set.frozen_by }), rows };
  }

  private checkTrainingRows(input: Buffer | TrainingRows, artifact: VerifiedArtifact): TrainingRows {
    let rows: TrainingRows;
    try {
      rows = Buffer.isBuffer(input) ? decodeTrainingRows(input) : input;
    } catch (err) {
      if (err instanceof TrainingRowsFormatError) throw this.refused('training-rows', `${TRAINING_ROWS_FILE}: ${err.message}`);
      throw err;
    }
    if (rows.dim !== artifact.head.spec.inputDim) throw this.refused('training-rows', `${TRAINING_ROWS_FILE}: embeddings are ${rows.dim}-d, the head takes ${artifact.head.spec.inputDim}`);
    const unknown = rows.labels.filter((l) => !artifact.labels.includes(l));
    if (unknown.length > 0) throw this.refused('training-rows', `${TRAINING_ROWS_FILE}: labels not in the model: ${unknown.join(', ')}`);
    return rows;
  }

  private async refuseInvalid<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ArtifactVerificationError) throw this.refused('artifact', err.reason);
      throw err;
    }
  }

  private refused(reason: string, message: string): InvalidModelArtifactError {
    this.metrics.modelsRefused.inc({ reason });
    this.log.warn(`model registration refused: ${message}`);
    return new InvalidModelArtifactError(message);
  }

  private toSummary(r: ModelVersionRow): ModelVersionSummaryDto {
    return {
      version: r.version,
      backbone: { id: r.backbone_id, checksum: r.backbone_checksum },
      labels: r.labels,
      categorySet: r.category_set,
      headType: r.head_type,
      source: r.source,
      accuracy: r.metrics?.accuracy ?? null,
      releasable: r.releasable,
      gateReason: r.gate_reason,
      registeredAt: r.registered_at.toISOString(),
    };
  }

  private toDto(r: ModelVersionRow): ModelVersionDto {
    return {
      ...this.toSummary(r),
      artifact: { sha256: r.artifact_sha256, bytes: Number(r.artifact_bytes) },
      trainingSet: r.training_set_sha256 ? { sha256: r.training_set_sha256, rows: r.training_set_rows ?? 0 } : null,
      lineage: r.lineage as unknown as ModelLineage,
      metrics: r.metrics,
      registeredBy: r.registered_by,
      createdAt: r.created_at.toISOString(),
      rescore: {
        state: r.rescore_state,
        samples: r.rescored_samples,
        finishedAt: r.rescored_at?.toISOString() ?? null,
        attempts: r.rescore_attempts ?? 0,
        error: r.rescore_error ?? null,
        retryAt: r.rescore_retry_at?.toISOString() ?? null,
      },
    };
  }
}

/**
 * Frozen evaluation rows that a version's own rows trained or validated on (split 0 or 1),
 * matched by row id up to the view (`image:a.jpg#zoom` and `image:a.jpg#center` are one
 * photo; `sample:7#aug-…` is sample 7). Rows without a real id (`row:<n>`) are not matched.
 */
export function evaluationRowsTrainedOn(evaluation: TrainingRows, rows: TrainingRows): string[] {
  if (!evaluation.ids || !rows.ids) return [];
  const key = (id: string) => id.split('#')[0] as string;
  const seen = new Set<string>();
  rows.ids.forEach((id, i) => {
    if (rows.split[i] !== TESTING_SPLIT && !id.startsWith('row:')) seen.add(key(id));
  });
  return evaluation.ids.filter((id) => !id.startsWith('row:') && seen.has(key(id)));
}

/** The split of training rows no trainer sees (0 training, 1 validation for epoch choice, 2 testing). */
const TESTING_SPLIT = 2;

/** The base-data part of a manifest's training record (dataset, counts, split), for lineage. */
function baseSummary(training: Record<string, unknown>): Record<string, unknown> {
  const pick = ['data', 'split', 'images', 'rows', 'head', 'ensemble', 'seed'];
  return Object.fromEntries(pick.filter((k) => k in training).map((k) => [k, training[k]]));
}

/**
 * The registry outside the hub's Nest app (a training-job worker process): the same
 * service on the worker's own Prisma client and blob store. Its backlog re-score is
 * left queued in the database for a hub process to claim.
 */
export function createModelRegistry(deps: { prisma: PrismaClient; blobs: BlobStore; gate: { gateMaxOverallDrop: number; gateMaxCategoryDrop: number }; metrics?: HubMetrics }): ModelsService {
  return new ModelsService(new ModelsRepository(deps.prisma), { kick: () => undefined }, deps.metrics ?? new HubMetrics(), deps.blobs, deps.gate);
}
