import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@shelfsight/common';
import {
  decodeTrainingRows,
  embeddingFromBytesLE,
  type TrainingJobPhase,
  type TrainingJobProgress,
  type ThumbnailAugmentation,
  type TrainingJobRequest,
  type TrainingRows,
} from '@shelfsight/contracts';
import type { PrismaClient } from '@shelfsight/db';
import type { BlobStore } from '../../blobs/blob-store';
import { HUB_CONFIG_SPEC } from '../../config/hub-config';
import { isEvaluationSample } from '../../models/evaluation-holdout';
import { ModelsRepository } from '../../models/models.repository';
import type { TrainingJobsRepository } from '../training-jobs.repository';
import { resolveBackbone, type JobPathRoots } from '../job-paths';
import { checkSampleEmbeddings, type EmbeddingCheckResult, type EmbeddingCheckSettings, type ThumbnailEmbedder } from './embedding-check';
import { registerAndCompleteJob, type GateTolerances, type RegisteredVersion } from './register-version';

export interface RunJobDeps {
  db: PrismaClient;
  /** This worker's id: registration completes the job only while it is this worker's running job. */
  workerId: string;
  jobs: TrainingJobsRepository;
  blobs: BlobStore;
  gate: GateTolerances;
  /** Where artifacts are written before registration. */
  workDir: string;
  defaultBackbone?: string;
  /** Where a job's dataset and backbone may be (the dataset is resolved before the job runs). */
  roots: JobPathRoots;
  /** The check of devices' embeddings against their thumbnails (EMBEDDING_CHECK_*); default the settings' defaults. */
  embeddingCheck?: EmbeddingCheckSettings;
  /** Bottleneck cache root (default the vision library's). */
  cacheDir?: string;
  logger: Logger;
}

export interface RunJobHooks {
  report(phase: TrainingJobPhase, progress?: TrainingJobProgress): void;
  /** Write the reported phase and progress now (before registration completes the job). */
  flush(): Promise<void>;
  signal: AbortSignal;
}

export interface JobOutcome {
  registered: RegisteredVersion;
  result: Record<string, unknown>;
}

/** A job's error that is the request's fault (unknown base, no backbone): failed with this message. */
export class TrainingJobInputError extends Error {
  override name = 'TrainingJobInputError';
}

/**
 * Share of the trained-on labelled samples the trainer picks its best epoch on (split 1),
 * by a hash of the device's sample id (stable across jobs). The samples held out for the
 * registry's evaluation (EVAL_HOLDOUT_PERCENT, `isEvaluationSample`) and those in frozen
 * evaluation rows are not in the job at all.
 */
const SAMPLE_VALIDATION_PERCENT = 10;
const SPLIT_OF = { training: 0, validation: 1, testing: 2 } as const;

/**
 * One retraining job in the worker: base rows (a dataset's bottlenecks, or a version's
 * stored training rows) plus every labelled sample's stored embedding, through the same
 * `trainModel` as `shelf train`, then registration.
 */
export async function runTrainingJob(jobId: string, spec: TrainingJobRequest, createdBy: string, deps: RunJobDeps, hooks: RunJobHooks): Promise<JobOutcome> {
  // TensorFlow is loaded here, in the worker, and only when a job runs.
  const vision = await import('@shelfsight/vision');
  const started = Date.now();
  let backboneSpec = spec.backbone;
  let baseRows: TrainingRows | undefined;
  let parent: string | undefined;
  if ('version' in spec.base) {
    const v = await deps.jobs.version(spec.base.version);
    if (!v) throw new TrainingJobInputError(`base version ${spec.base.version} is not registered`);
    if (!v.training_set_sha256) throw new TrainingJobInputError(`base version ${spec.base.version} has no stored training rows`);
    const blob = await deps.blobs.get(v.training_set_sha256);
    if (!blob) throw new TrainingJobInputError(`training rows of version ${spec.base.version} (${v.training_set_sha256.slice(0, 12)}) are missing from the blob store`);
    baseRows = decodeTrainingRows(blob);
    backboneSpec ??= manifestBackboneSource(v.manifest);
    parent = v.version;
  } else {
    backboneSpec ??= deps.defaultBackbone ?? manifestBackboneSource(await deps.jobs.newestManifestFor());
  }
  if (!backboneSpec) throw new TrainingJobInputError('no backbone: name one in the request (backbone), set TRAINING_BACKBONE, or register a version first');
  // From the request or a registered manifest: only a built-in or catalogue name, TRAINING_BACKBONE, or a folder in the backbone roots.
  backboneSpec = await resolveBackbone(backboneSpec, deps.roots, [...Object.keys(vision.BUILTIN_BACKBONES), ...Object.keys(vision.BACKBONE_CATALOGUE)]);
  const backbone = backboneIdentity(vision, backboneSpec);

  let sampleRows: TrainingRows | undefined;
  const sampleIds: string[] = [];
  let unusable = 0;
  let heldOutForEvaluation = 0;
  let embeddingCheck: EmbeddingCheckResult | undefined;
  let mismatchedBefore = 0;
  if (spec.samples === 'all labelled') {
    const labelled = await deps.jobs.labelledSamples(backbone.id, backbone.featureDim);
    unusable = await deps.jobs.countUnusableLabelled(backbone.id, backbone.featureDim);
    // Never trained on: samples in frozen evaluation rows, and samples found before not to match their thumbnails.
    const registry = new ModelsRepository(deps.db);
    const frozen = await frozenSampleIds(deps, backbone.id);
    const flagged = await registry.embeddingMismatches(backbone.id);
    const usable = labelled.filter((s) => !frozen.has(`sample:${s.id}`) && !flagged.has(s.id.toString()));
    mismatchedBefore = labelled.filter((s) => flagged.has(s.id.toString())).length;
    // Devices' embeddings are checked against the thumbnails operators labelled — the held-out ones too, which
    // the registry evaluates on: those that disagree are left out of both, and recorded so later jobs skip them.
    embeddingCheck = await checkEmbeddings(vision, deps, hooks, backboneSpec, backbone.featureDim, usable);
    await registry.markEmbeddingMismatches(embeddingCheck.mismatched);
    const checked = usable.filter((s) => !embeddingCheck!.mismatched.has(s.id.toString()));
    // The registry's evaluation share of labelled samples (by a hash of the sample id) is never trained on.
    const samples = checked.filter((s) => !isEvaluationSample(s.id, deps.gate.evalHoldoutPercent ?? DEFAULT_HOLDOUT_PERCENT));
    heldOutForEvaluation = checked.length - samples.length;
    if (samples.length > 0) {
      const labels = [...new Set(samples.map((s) => s.label))].sort();
      /** A trained-on sample's split (training or validation), by a hash of its device's sample id. */
      const sampleSplit = (s: (typeof samples)[number]): number => SPLIT_OF[vision.whichSet(sampleSplitKey(s.device_id, s.sample_id), SAMPLE_VALIDATION_PERCENT, 0)];
      const dim = backbone.featureDim;
      const x = new Float32Array(samples.length * dim);
      samples.forEach((s, i) => {
        x.set(embeddingFromBytesLE(s.embedding, dim), i * dim);
        sampleIds.push(s.id.toString());
      });
      sampleRows = {
        dim,
        labels,
        label: Uint32Array.from(samples.map((s) => labels.indexOf(s.label))),
        split: Uint8Array.from(samples.map((s) => sampleSplit(s))),
        x,
        ids: samples.map((s) => `sample:${s.id}`),
      };
    }
  }
  const baseCount = baseRows ? baseRows.label.length : 0;
  const sampleCount = sampleRows ? sampleRows.label.length : 0;
  hooks.report('bottlenecks', { baseRows: baseCount, sampleRows: sampleCount });
  if (heldOutForEvaluation > 0) deps.logger.info('labelled samples held out for evaluation (never trained on)', { jobId, samples: heldOutForEvaluation });

  // Distorted views of the training samples' thumbnails (never of held-out ones: their views would leak them).
  let augmented: Awaited<ReturnType<typeof augmentFromThumbnails>> | undefined;
  if (spec.augmentFromThumbnails !== false && sampleRows) {
    const trainingSamples = samplesOf(sampleRows, sampleIds).filter((s) => s.split === 0);
    augmented = await augmentFromThumbnails(vision, deps, hooks, backboneSpec, spec.augmentFromThumbnails, trainingSamples, { baseRows: baseCount, sampleRows: sampleCount });
  }
  const augmentedCount = augmented ? augmented.rows.label.length : 0;
  const counts = { baseRows: baseCount, sampleRows: sampleCount, ...(augmented ? { augmentedRows: augmentedCount, skippedThumbnails: augmented.skipped.length } : {}) };
  const extraRows = mergeRows(mergeRows(baseRows, sampleRows), augmented?.rows);
  deps.logger.info('training job rows', { jobId, backbone: backbone.id, ...counts, unusableSamples: unusable });

  const out = join(deps.workDir, `job-${jobId}`);
  const h = spec.head;
  const d = vision.TRAIN_DEFAULTS;
  try {
    const trained = await vision.trainModel({
      backbone: backboneSpec,
      ...(deps.cacheDir ? { cacheDir: deps.cacheDir } : {}),
      logger: deps.logger,
      ...('dataset' in spec.base ? { data: spec.base.dataset } : {}),
      ...(extraRows ? { extraRows } : {}),
      out,
      validationPercentage: d.validationPercentage,
      testingPercentage: d.testingPercentage,
      // A dataset base's testing split comes back in the rows (split 2), for the registry's evaluation set.
      keepTesting: true,
      distortions: {},
      tta: d.tta,
      head: h.type,
      hidden: h.hidden,
      normalize: d.normalize,
      learningRate: h.learningRate ?? d.learningRate,
      optimizer: d.optimizer,
      epochs: h.epochs ?? d.epochs,
      batchSize: h.batchSize ?? d.batchSize,
      patience: d.patience,
      labelSmoothing: h.labelSmoothing ?? d.labelSmoothing,
      weightDecay: h.weightDecay ?? d.weightDecay,
      dropout: h.dropout ?? d.dropout,
      seed: h.seed ?? d.seed,
      parent,
      signal: hooks.signal,
      onProgress: (p) =>
        hooks.report(p.phase, {
          ...counts,
          ...(p.rows !== undefined ? { rows: p.rows } : {}),
          ...(p.step !== undefined ? { step: p.step, steps: p.steps, epoch: p.epoch, epochs: p.epochs } : {}),
          ...(p.valAccuracy !== undefined ? { valAccuracy: p.valAccuracy } : {}),
        }),
    });
    hooks.report('evaluating');
    const metrics = trained.manifest.metrics;
    if (hooks.signal.aborted) throw new vision.TrainingCancelledError();
    hooks.report('registering');
    await hooks.flush();
    const seconds = {
      bottlenecks: +trained.bottleneckSeconds.toFixed(2),
      ...(augmented ? { augment: +augmented.seconds.toFixed(2) } : {}),
      head: +trained.trainSeconds.toFixed(2),
    };
    const registered = await registerAndCompleteJob(deps.db, deps.blobs, deps.gate, { jobId, workerId: deps.workerId }, {
      artifactDir: out,
      rows: trained.rows,
      parent,
      // A version base's rows are that version's stored rows (an upload's, perhaps): they never freeze evaluation rows.
      rowsFromHubData: 'dataset' in spec.base,
      lineage: { jobId, base: spec.base, sampleIds, baseRows: baseCount, sampleRows: sampleCount },
      createdBy,
    }, (r) => ({
      version: r.version,
      releasable: r.releasable,
      gateReason: r.gateReason,
      gate: r.gate,
      evaluation: r.metrics,
      validationAccuracy: metrics.validationAccuracy ?? null,
      rows: trained.rows.label.length,
      ...counts,
      ...(augmented ? { skippedThumbnailSamples: augmented.skipped.slice(0, 100) } : {}),
      unusableSamples: unusable,
      heldOutForEvaluation,
      ...(embeddingCheck ? { embeddingCheck: { ...embeddingCheckSummary(embeddingCheck), mismatchedBefore } } : {}),
      seconds: { ...seconds, total: +((Date.now() - started) / 1000).toFixed(2) },
    }));
    return registered;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

function manifestBackboneSource(manifest: unknown): string | undefined {
  const source = (manifest as { backbone?: { source?: unknown } } | undefined)?.backbone?.source;
  return typeof source === 'string' && source.length > 0 ? source : undefined;
}

/** id and feature size of a backbone spec, from its manifest alone (no weights loaded). */
function backboneIdentity(vision: typeof import('@shelfsight/vision'), spec: string): { id: string; featureDim: number } {
  const builtin = vision.BUILTIN_BACKBONES[spec] ?? vision.BACKBONE_CATALOGUE[spec];
  if (builtin) return { id: builtin.name, featureDim: builtin.featureDim };
  const file = existsSync(join(spec, 'backbone.json')) ? join(spec, 'backbone.json') : spec;
  if (!existsSync(file)) throw new TrainingJobInputError(`backbone ${spec} is not a built-in, catalogue name or folder with backbone.json on the worker`);
  const m = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; featureDim?: unknown };
  if (typeof m.name !== 'string' || typeof m.featureDim !== 'number') throw new TrainingJobInputError(`${file} lacks name or featureDim`);
  return { id: m.name, featureDim: m.featureDim };
}

/** Base rows and sample rows as one set over the union of their labels. */
export function mergeRows(a: TrainingRows | undefined, b: TrainingRows | undefined): TrainingRows | undefined {
  if (!a || !b) return a ?? b;
  if (a.dim !== b.dim) throw new TrainingJobInputError(`base rows have dim ${a.dim}, samples ${b.dim}`);
  const labels = [...new Set([...a.labels, ...b.labels])].sort();
  const remap = (set: TrainingRows) => Array.from(set.label, (l) => labels.indexOf(set.labels[l] as string));
  const x = new Float32Array(a.x.length + b.x.length);
  x.set(a.x, 0);
  x.set(b.x, a.x.length);
  const ids = a.ids && b.ids ? [...a.ids, ...b.ids] : undefined;
  return {
    dim: a.dim,
    labels,
    label: Uint32Array.from([...remap(a), ...remap(b)]),
    split: Uint8Array.from([...a.split, ...b.split]),
    x,
    ...(ids ? { ids } : {}),
  };
}

/**
 * What a sample's split is hashed on: the device and its own sample id (stable however
 * and whenever it arrived), without characters `whichSet` reads as a path or extension.
 */
export function sampleSplitKey(deviceId: string, sampleId: string): string {
  return `sample-${deviceId}-${sampleId}`.replace(/[/\\.]/g, '_');
}

/** The samples (`sample:<id>`) in any frozen evaluation rows of the backbone. */
async function frozenSampleIds(deps: RunJobDeps, backboneId: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const set of await new ModelsRepository(deps.db).evaluationSetsOf(backboneId)) {
    const blob = await deps.blobs.get(set.blob_sha256);
    const rows = blob ? decodeTrainingRows(blob) : undefined;
    for (const id of rows?.ids ?? []) if (id.startsWith('sample:')) ids.add(id.split('#')[0] as string);
  }
  return ids;
}

/** Re-embed a share of each device's samples from their thumbnails with the job's backbone (centre view, as agents classify). */
async function checkEmbeddings(
  vision: typeof import('@shelfsight/vision'),
  deps: RunJobDeps,
  hooks: RunJobHooks,
  backbone: string,
  dim: number,
  samples: Array<{ id: bigint; device_id: string; embedding: Uint8Array }>,
): Promise<EmbeddingCheckResult> {
  const embed: ThumbnailEmbedder = async (paths, onProgress) => {
    if (paths.length === 0) return new Map();
    const ctx = await vision.openExtraction({ backbone, ...(deps.cacheDir ? { cacheDir: deps.cacheDir } : {}), logger: deps.logger }, paths.length);
    try {
      const r = await vision.computeBottlenecks(paths.map((path) => ({ path, views: [vision.CENTER_VIEW] })), ctx.extractor, ctx.cache, { logger: ctx.logger, onProgress, chunk: 64 });
      const out = new Map<string, Float32Array>();
      for (const [path, views] of r.features) {
        const f = views.get(vision.CENTER_VIEW.key);
        if (f) out.set(path, f);
      }
      return out;
    } finally {
      await ctx.close();
    }
  };
  const thumbnails = async (ids: bigint[]) => {
    const shas = await deps.jobs.thumbnailsOf(ids);
    const out = new Map<string, Buffer>();
    for (const [id, sha] of shas) {
      const bytes = await deps.blobs.get(sha).catch(() => undefined);
      if (bytes) out.set(id, bytes);
    }
    return out;
  };
  const r = await checkSampleEmbeddings({
    samples,
    dim,
    settings: deps.embeddingCheck ?? DEFAULT_EMBEDDING_CHECK,
    thumbnails,
    embed,
    workDir: deps.workDir,
    logger: deps.logger,
    onProgress: (done, total) => hooks.report('bottlenecks', { embeddingCheckDone: done, embeddingCheckTotal: total }),
  });
  if (r.mismatched.size > 0) deps.logger.warn('labelled samples left out: their embeddings do not match their thumbnails', { samples: r.mismatched.size });
  return r;
}

/** What the job's result says about the check (GET /training-jobs/:id, the console's Training screen). */
function embeddingCheckSummary(r: EmbeddingCheckResult): Record<string, unknown> {
  return {
    checked: r.checked,
    leftOut: r.mismatched.size,
    ...(r.mismatched.size > 0 ? { leftOutSamples: [...r.mismatched.keys()].slice(0, 100) } : {}),
    seconds: +r.seconds.toFixed(2),
    devices: r.devices,
    messages: r.devices.flatMap((d) => (d.message ? [d.message] : [])),
  };
}

const DEFAULT_EMBEDDING_CHECK: EmbeddingCheckSettings = {
  percent: HUB_CONFIG_SPEC.embeddingCheckPercent.schema.parse(undefined),
  allBelow: HUB_CONFIG_SPEC.embeddingCheckAllBelow.schema.parse(undefined),
  maxCosineDistance: HUB_CONFIG_SPEC.embeddingMaxCosineDistance.schema.parse(undefined),
};

/** EVAL_HOLDOUT_PERCENT's default, for callers that pass no setting. */
const DEFAULT_HOLDOUT_PERCENT = HUB_CONFIG_SPEC.evalHoldoutPercent.schema.parse(undefined);

interface SampleRef {
  id: string;
  label: string;
  split: number;
}

function samplesOf(rows: TrainingRows, ids: string[]): SampleRef[] {
  return ids.map((id, i) => ({ id, label: rows.labels[rows.label[i] as number] as string, split: rows.split[i] as number }));
}

/**
 * Rows from distorted views of the samples' stored thumbnails, through the backbone (the
 * vision core's `thumbnailViewRows`, with `shelf train`'s distortion options). A missing or
 * corrupt thumbnail is skipped and counted, never fails the job.
 */
async function augmentFromThumbnails(
  vision: typeof import('@shelfsight/vision'),
  deps: RunJobDeps,
  hooks: RunJobHooks,
  backbone: string,
  request: true | ThumbnailAugmentation,
  samples: SampleRef[],
  counts: { baseRows: number; sampleRows: number },
): Promise<{ rows: TrainingRows; skipped: Array<{ id: string; error: string }>; seconds: number }> {
  const started = Date.now();
  const { views, ...given } = request === true ? { views: 4 } : request;
  const distortions = { ...vision.THUMBNAIL_DISTORTIONS, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  const shas = await deps.jobs.thumbnailsOf(samples.map((s) => BigInt(s.id)));
  const images: Array<{ id: string; label: string; bytes: Buffer }> = [];
  const skipped: Array<{ id: string; error: string }> = [];
  for (const s of samples) {
    const sha = shas.get(s.id);
    const bytes = sha ? await deps.blobs.get(sha).catch(() => undefined) : undefined;
    if (bytes) images.push({ id: `sample:${s.id}`, label: s.label, bytes });
    else skipped.push({ id: `sample:${s.id}`, error: sha ? `thumbnail ${sha.slice(0, 12)} is missing from the blob store` : 'no thumbnail' });
  }
  const total = images.length * views;
  hooks.report('augmenting', { ...counts, augmentDone: 0, augmentTotal: total, skippedThumbnails: skipped.length });
  const r = await vision.thumbnailViewRows({
    backbone,
    ...(deps.cacheDir ? { cacheDir: deps.cacheDir } : {}),
    logger: deps.logger,
    images,
    views,
    distortions,
    workDir: deps.workDir,
    signal: hooks.signal,
    onProgress: (done) => hooks.report('augmenting', { ...counts, augmentDone: done, augmentTotal: total, skippedThumbnails: skipped.length }),
  });
  skipped.push(...r.skipped);
  for (const s of r.skipped) deps.logger.warn('thumbnail skipped', { sample: s.id, error: s.error });
  hooks.report('augmenting', { ...counts, augmentDone: total, augmentTotal: total, augmentedRows: r.rows.label.length, skippedThumbnails: skipped.length });
  return { rows: r.rows, skipped, seconds: (Date.now() - started) / 1000 };
}
