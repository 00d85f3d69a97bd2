import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  ArtifactVerificationError,
  decodeTrainingRows,
  embeddingFromBytesLE,
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
import { HUB_CONFIG, HUB_CONFIG_SPEC } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { RESCORE_TRIGGER, type RescoreTrigger } from './backlog-rescorer';
import { confusionMatrixSvg } from '@shelfsight/common';
import { categorySetOf, correctRows, evaluateHead, poolRows, rowsOfCategories, type ModelMetrics } from './evaluation';
import { isEvaluationSample } from './evaluation-holdout';
import { judgeVersion, type GateJudgement, type GateSettings } from './model-gate';
import type { EvaluationRowsDto, ListModelsQuery, ModelComparisonDto, ModelLineage, ModelSource, ModelVersionDto, ModelVersionSummaryDto } from './models.dto';
import { GateOverrideRefusedError, IncomparableModelsError, InvalidModelArtifactError, ModelVersionConflictError, ModelVersionNotFoundError } from './models.error';
import { ModelsRepository, type ModelVersionRow } from './models.repository';

/** The registry's gate settings (hub settings GATE_*, EVAL_HOLDOUT_PERCENT); omitted ones take the settings' defaults. */
export interface RegistryGateConfig {
  gateMaxOverallDrop: number;
  gateMaxCategoryDrop: number;
  gateAlpha?: number;
  gateMinEvalRows?: number;
  evalHoldoutPercent?: number;
}

/** The hub's own evaluation rows of a backbone: frozen base rows of every category set beside the held-out labelled samples. */
interface EvaluationPool {
  rows: TrainingRows;
  frozenBy: string[];
  heldOutSamples: number;
}

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
  /**
   * A job's rows came from the hub's own data (a dataset base under its roots, not a
   * version's stored rows, which may have been uploaded): its testing rows may then freeze
   * the category set's evaluation rows. The demo's always may; an upload's never.
   */
  rowsFromHubData?: boolean;
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
  private readonly gate: GateSettings;
  private readonly holdoutPercent: number;

  constructor(
    private readonly repo: ModelsRepository,
    @Inject(RESCORE_TRIGGER) private readonly rescorer: RescoreTrigger,
    private readonly metrics: HubMetrics,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(HUB_CONFIG) config: RegistryGateConfig,
  ) {
    const def = <K extends 'gateAlpha' | 'gateMinEvalRows' | 'evalHoldoutPercent'>(k: K): number => config[k] ?? (HUB_CONFIG_SPEC[k].schema.parse(undefined) as number);
    this.gate = { alpha: def('gateAlpha'), maxCategoryDrop: config.gateMaxCategoryDrop, maxOverallDrop: config.gateMaxOverallDrop, minEvalRows: def('gateMinEvalRows') };
    this.holdoutPercent = def('evalHoldoutPercent');
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
    // Only rows the hub vouches for join its evaluation rows: a job's on a dataset base (the hub's data),
    // or the demo's. An upload's rows, splits and metrics are kept as declared, never used.
    if (rows && (input.source === 'demo' || (input.source === 'job' && input.rowsFromHubData === true))) await this.freezeEvaluationRows(categorySet, manifest.version, manifest.backbone.id, rows);
    const parentName = input.lineage?.parent ?? manifest.lineage?.parent ?? null;
    const { metrics, gate, trainedOn } = await this.judge(artifact, manifest.version, manifest.backbone.id, categorySet, parentName, rows);
    const verdict =
      trainedOn.length > 0
        ? {
            releasable: false,
            reason: `not releasable: ${trainedOn.length} of the ${metrics.rows} evaluation rows were among its training or validation rows (e.g. ${trainedOn.slice(0, 3).join(', ')}): its metrics would be optimistic`,
          }
        : { releasable: gate.releasable, reason: gate.reason };
    const gateRecord = {
      ...gate,
      releasable: verdict.releasable,
      reason: verdict.reason,
      ...(trainedOn.length > 0 ? { overridable: false, trainedOnRows: trainedOn.length } : {}),
      settings: this.gate,
      holdoutPercent: this.holdoutPercent,
    };
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
      metrics,
      releasable: verdict.releasable,
      gate_reason: verdict.reason,
      gate: gateRecord as unknown as Record<string, unknown>,
      declared: input.source === 'upload' ? declaredBy(manifest as unknown as Record<string, unknown>, rows) : null,
      source: input.source,
      registered_by: input.registeredBy ?? null,
      created_at: new Date(manifest.createdAt),
    });
    await this.repo.addCategories(labels);
    this.metrics.modelsRegistered.inc({ source: input.source, releasable: String(verdict.releasable) });
    this.log.log(`registered ${manifest.version} (${input.source}, ${labels.length} categories, accuracy ${metrics.accuracy.toFixed(3)} on ${metrics.rows} rows): ${verdict.releasable ? 'releasable' : 'NOT releasable'} — ${verdict.reason}`);
    // Only a releasable version re-scores the backlog: queued in the row (rescore_state); a hub process claims it, this one at once.
    if (verdict.releasable) this.rescorer.kick();
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
    if (!row.metrics) throw new IncomparableModelsError(`model version ${version} has not been evaluated`);
    const m = row.metrics;
    return confusionMatrixSvg(m.labels, m.confusion, `${version} · accuracy ${(m.accuracy * 100).toFixed(1)}% on ${m.rows} evaluation rows`);
  }

  /** The stored canonical artifact tar. */
  async artifact(version: string): Promise<{ sha256: string; bytes: number; stream: NodeJS.ReadableStream }> {
    const row = await this.row(version);
    const blob = await this.blobs.open(row.artifact_sha256);
    if (!blob) throw new ModelVersionNotFoundError(`${version} (artifact blob ${row.artifact_sha256} is missing)`);
    return { sha256: row.artifact_sha256, bytes: blob.bytes, stream: blob.stream };
  }

  /**
   * Two versions of one backbone on the hub's evaluation rows as they are now, row by row on
   * the same rows: overall and per category, on the categories they share (as the gate
   * compares a version with its reference).
   */
  async compare(a: string, b: string): Promise<ModelComparisonDto> {
    const [ra, rb] = [await this.row(a), await this.row(b)];
    if (ra.backbone_id !== rb.backbone_id) {
      throw new IncomparableModelsError(`${a} and ${b} belong to different backbones (${ra.backbone_id}, ${rb.backbone_id}): no shared evaluation rows`);
    }
    const shared = rb.labels.filter((l) => ra.labels.includes(l));
    if (shared.length === 0) throw new IncomparableModelsError(`${a} and ${b} share no category (${ra.labels.join(', ')} vs ${rb.labels.join(', ')})`);
    const [ha, hb] = [await this.loadArtifact(ra), await this.loadArtifact(rb)];
    if (ha.head.spec.inputDim !== hb.head.spec.inputDim) throw new IncomparableModelsError(`${a} takes ${ha.head.spec.inputDim}-d embeddings, ${b} ${hb.head.spec.inputDim}-d`);
    const pool = await this.evaluationPool(rb.backbone_id, hb.head.spec.inputDim);
    const rows = rowsOfCategories(pool.rows, shared);
    const ca = correctRows(ha.head, ha.labels, rows);
    const cb = correctRows(hb.head, hb.labels, rows);
    const share = (c: Uint8Array, idx: number[]) => (idx.length > 0 ? idx.reduce((n, i) => n + (c[i] as number), 0) / idx.length : 0);
    const all = [...rows.label.keys()];
    const overall = { a: share(ca, all), b: share(cb, all) };
    return {
      a,
      b,
      categorySet: categorySetOf(shared),
      evaluationRows: rows.label.length,
      overall: { ...overall, delta: overall.b - overall.a },
      perCategory: rows.labels.map((category, l) => {
        const idx = all.filter((i) => rows.label[i] === l);
        const [x, y] = [share(ca, idx), share(cb, idx)];
        return { category, rows: idx.length, a: x, b: y, delta: y - x };
      }),
    };
  }

  private async row(version: string): Promise<ModelVersionRow> {
    const row = await this.repo.findVersion(version);
    if (!row) throw new ModelVersionNotFoundError(version);
    return row;
  }

  /**
   * An operator's release of a version whose only obstacle at the gate was unverified
   * categories (too few evaluation rows), with a written reason: recorded on the version
   * (shown by the registry and the console) and in the audit log; the version then
   * re-scores the backlog. A version refused for a regression cannot be overridden.
   */
  async override(version: string, reason: string, by: string): Promise<ModelVersionDto> {
    const row = await this.row(version);
    if (row.releasable === true) throw new GateOverrideRefusedError(`model version ${version} is releasable already`);
    const gate = row.gate as { overridable?: boolean; unverified?: string[] } | null;
    if (!gate?.overridable) throw new GateOverrideRefusedError(`model version ${version} cannot be overridden: only a version whose sole obstacle is unverified categories can (${row.gate_reason ?? 'not judged'})`);
    const at = new Date().toISOString();
    const ok = await this.repo.setOverride(version, { by, reason, at }, `released by ${by}'s override (unverified: ${(gate.unverified ?? []).join(', ')}): "${reason}". The gate said: ${row.gate_reason ?? ''}`);
    if (!ok) throw new GateOverrideRefusedError(`model version ${version} is releasable already`);
    this.log.warn(`gate override: ${version} released by ${by} with unverified categories ${(gate.unverified ?? []).join(', ')}: ${reason}`);
    this.rescorer.kick();
    return this.get(version);
  }

  /**
   * `POST /models/evaluation-rows`: an operator's labelled evaluation rows (training-rows.bin)
   * for a backbone join the hub's evaluation rows — every row, whatever its split — frozen
   * (never replaced); each later version of the backbone is scored on them.
   */
  async addEvaluationRows(body: Buffer, backboneId: string, by: string): Promise<EvaluationRowsDto> {
    let rows: TrainingRows;
    try {
      rows = decodeTrainingRows(body);
    } catch (err) {
      if (err instanceof TrainingRowsFormatError) throw this.refused('evaluation-rows', `evaluation rows: ${err.message}`);
      throw err;
    }
    if (rows.label.length === 0) throw this.refused('evaluation-rows', 'evaluation rows: no rows');
    const sorted = [...rows.labels].sort();
    const evalRows: TrainingRows = { ...rows, labels: sorted, label: Uint32Array.from(rows.label, (l) => sorted.indexOf(rows.labels[l] as string)), split: new Uint8Array(rows.label.length).fill(TESTING_SPLIT) };
    const blob = await this.blobs.put(encodeTrainingRows(evalRows));
    const counts: Record<string, number> = Object.fromEntries(sorted.map((l) => [l, 0]));
    evalRows.label.forEach((l) => (counts[sorted[l] as string] = (counts[sorted[l] as string] as number) + 1));
    const set = await this.repo.freezeEvaluationSet({
      category_set: `rows:${blob.sha256}`,
      labels: sorted,
      backbone_id: backboneId,
      embedding_dim: rows.dim,
      blob_sha256: blob.sha256,
      rows: rows.label.length,
      counts,
      frozen_by: `operator:${by}`,
    });
    this.log.log(`evaluation rows of ${backboneId} added by ${by}: ${rows.label.length} rows of {${sorted.join(', ')}}`);
    return { id: set.category_set, backbone: backboneId, dim: set.embedding_dim, rows: set.rows, counts: set.counts, frozenBy: set.frozen_by };
  }

  /**
   * Freeze a category set's base evaluation rows from a version's held-out testing rows
   * (split 2) when the set has none yet. Only testing rows: a trainer fits its weights on
   * the training rows and picks its best epoch on the validation rows (split 1). Frozen
   * rows never change; the hub scores every version on the frozen rows of every category
   * set of its backbone beside the held-out labelled samples ({@link evaluationPool}).
   */
  private async freezeEvaluationRows(categorySet: string, version: string, backboneId: string, rows: TrainingRows): Promise<void> {
    if (await this.repo.evaluationSet(categorySet, backboneId)) return;
    const sorted = [...rows.labels].sort();
    const heldOut: number[] = [];
    for (let i = 0; i < rows.label.length; i++) if (rows.split[i] === TESTING_SPLIT) heldOut.push(i);
    if (heldOut.length === 0) return;
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
    if (set.frozen_by === version) this.log.log(`froze evaluation rows of {${sorted.join(', ')}}: ${heldOut.length} held-out testing rows of ${version}`);
  }

  /** The hub's evaluation rows of a backbone for heads taking `dim` inputs. */
  private async evaluationPool(backboneId: string, dim: number): Promise<EvaluationPool> {
    const parts: TrainingRows[] = [];
    const frozenBy: string[] = [];
    for (const set of await this.repo.evaluationSetsOf(backboneId)) {
      if (set.embedding_dim !== dim) continue;
      const bytes = await this.blobs.get(set.blob_sha256);
      if (!bytes) throw new Error(`evaluation rows ${set.blob_sha256} (${set.category_set}) are missing from the blob store`);
      parts.push(decodeTrainingRows(bytes));
      frozenBy.push(set.frozen_by);
    }
    const held = (await this.repo.labelledSampleIds(backboneId, dim)).filter((s) => isEvaluationSample(s.id, this.holdoutPercent));
    const samples = await this.repo.sampleEmbeddings(held.map((s) => s.id));
    if (samples.length > 0) {
      const labels = [...new Set(samples.map((s) => s.label))].sort();
      const x = new Float32Array(samples.length * dim);
      samples.forEach((s, i) => x.set(embeddingFromBytesLE(s.embedding, dim), i * dim));
      parts.push({ dim, labels, label: Uint32Array.from(samples.map((s) => labels.indexOf(s.label))), split: new Uint8Array(samples.length).fill(TESTING_SPLIT), x, ids: samples.map((s) => `sample:${s.id}`) });
    }
    return { rows: poolRows(parts, dim), frozenBy, heldOutSamples: samples.length };
  }

  /**
   * The version the candidate answers to: its parent when that is a releasable version of the
   * backbone, else the releasable version most devices run, else the newest releasable one.
   * Never an unreleasable version (a chain of refused versions cannot walk the gate down).
   */
  private async reference(version: string, backboneId: string, parent: string | null): Promise<ModelVersionRow | undefined> {
    const p = parent ? await this.repo.findVersion(parent) : undefined;
    if (p && p.version !== version && p.backbone_id === backboneId && p.releasable === true) return p;
    return (await this.repo.fleetVersion(backboneId, version)) ?? (await this.repo.newestReleasable(backboneId, version));
  }

  /** Score the candidate, and its reference on exactly the same rows, and let the gate judge. */
  private async judge(
    artifact: VerifiedArtifact,
    version: string,
    backboneId: string,
    categorySet: string,
    parent: string | null,
    ownRows: TrainingRows | undefined,
  ): Promise<{ metrics: ModelMetrics; gate: GateJudgement; trainedOn: string[] }> {
    const pool = await this.evaluationPool(backboneId, artifact.head.spec.inputDim);
    const rows = rowsOfCategories(pool.rows, artifact.labels);
    const heldOutSamples = (rows.ids ?? []).filter((id) => id.startsWith('sample:')).length;
    const metrics: ModelMetrics = { ...evaluateHead(artifact.head, artifact.labels, rows, { categorySet, frozenBy: pool.frozenBy.join(', ') || 'none' }), heldOutSamples };
    const trainedOn = ownRows ? evaluationRowsTrainedOn(rows, ownRows) : [];
    if (trainedOn.length > 0) metrics.trainedOnRows = trainedOn.length;
    const candidate = correctRows(artifact.head, artifact.labels, rows);
    const ref = await this.reference(version, backboneId, parent);
    const refArtifact = ref ? await this.loadArtifact(ref) : undefined;
    const reference = refArtifact ? correctRows(refArtifact.head, refArtifact.labels, rows) : undefined;
    const byCategory = rows.labels.map(() => [] as number[]);
    rows.label.forEach((l, i) => byCategory[l]!.push(i));
    const gate = judgeVersion(
      {
        ...(ref && refArtifact ? { reference: ref.version } : {}),
        floor: Math.max(metrics.baseline.majority, metrics.baseline.chance),
        categories: rows.labels.map((category, l) => {
          const idx = byCategory[l] as number[];
          return {
            category,
            candidate: idx.map((i) => candidate[i] as number),
            ...(reference && refArtifact!.labels.includes(category) ? { reference: idx.map((i) => reference[i] as number) } : {}),
          };
        }),
      },
      this.gate,
    );
    return { metrics, gate, trainedOn };
  }

  private async loadArtifact(row: ModelVersionRow): Promise<VerifiedArtifact> {
    const tar = await this.blobs.get(row.artifact_sha256);
    if (!tar) throw new Error(`artifact blob ${row.artifact_sha256} of ${row.version} is missing`);
    const { trainingRows: _rows, ...files } = await unpackArtifact(tar);
    return verifyArtifact(files);
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
      override: r.gate_override ?? null,
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
      gate: (r.gate as ModelVersionDto['gate']) ?? null,
      declared: r.declared ?? null,
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

/** What an uploader said about its version (informational: the gate never reads it). */
function declaredBy(manifest: Record<string, unknown>, rows: TrainingRows | undefined): Record<string, unknown> {
  const splits = rows ? { training: 0, validation: 0, testing: 0 } : undefined;
  if (rows && splits) for (const s of rows.split) splits[s === 1 ? 'validation' : s === 2 ? 'testing' : 'training']++;
  return {
    note: 'declared by the uploader: informational, never used by the gate (the hub scores every version on its own evaluation rows)',
    metrics: manifest.metrics ?? null,
    ...(rows && splits ? { trainingRows: rows.label.length, splits, rowIds: (rows.ids ?? []).filter((id) => !id.startsWith('row:')).length } : {}),
  };
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
export function createModelRegistry(deps: { prisma: PrismaClient; blobs: BlobStore; gate: RegistryGateConfig; metrics?: HubMetrics }): ModelsService {
  return new ModelsService(new ModelsRepository(deps.prisma), { kick: () => undefined }, deps.metrics ?? new HubMetrics(), deps.blobs, deps.gate);
}
