import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@shelfsight/common';
import {
  decodeTrainingRows,
  embeddingFromBytesLE,
  type TrainingJobPhase,
  type TrainingJobProgress,
  type TrainingJobRequest,
  type TrainingRows,
} from '@shelfsight/contracts';
import type { PrismaClient } from '@shelfsight/db';
import type { BlobStore } from '../../blobs/blob-store';
import type { TrainingJobsRepository } from '../training-jobs.repository';
import { registerTrainedVersion, type GateTolerances, type RegisteredVersion } from './register-version';

export interface RunJobDeps {
  db: PrismaClient;
  jobs: TrainingJobsRepository;
  blobs: BlobStore;
  gate: GateTolerances;
  /** Where artifacts are written before registration. */
  workDir: string;
  defaultBackbone?: string;
  /** Bottleneck cache root (default the vision library's). */
  cacheDir?: string;
  logger: Logger;
}

export interface RunJobHooks {
  report(phase: TrainingJobPhase, progress?: TrainingJobProgress): void;
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

/** Share of labelled samples held out for validation (by a hash of the sample id, so stable across jobs). */
const SAMPLE_VALIDATION_PERCENT = 10;

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
  const backbone = backboneIdentity(vision, backboneSpec);

  let sampleRows: TrainingRows | undefined;
  const sampleIds: string[] = [];
  let unusable = 0;
  if (spec.samples === 'all labelled') {
    const samples = await deps.jobs.labelledSamples(backbone.id, backbone.featureDim);
    unusable = await deps.jobs.countUnusableLabelled(backbone.id, backbone.featureDim);
    if (samples.length > 0) {
      const labels = [...new Set(samples.map((s) => s.label))].sort();
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
        split: Uint8Array.from(samples.map((s) => (vision.whichSet(`sample-${s.id}`, SAMPLE_VALIDATION_PERCENT, 0) === 'validation' ? 1 : 0))),
        x,
        ids: samples.map((s) => `sample:${s.id}`),
      };
    }
  }
  const extraRows = mergeRows(baseRows, sampleRows);
  const baseCount = baseRows ? baseRows.label.length : 0;
  const sampleCount = sampleRows ? sampleRows.label.length : 0;
  hooks.report('bottlenecks', { baseRows: baseCount, sampleRows: sampleCount });
  deps.logger.info('training job rows', { jobId, backbone: backbone.id, baseRows: baseCount, sampleRows: sampleCount, unusableSamples: unusable });

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
          baseRows: baseCount,
          sampleRows: sampleCount,
          ...(p.rows !== undefined ? { rows: p.rows } : {}),
          ...(p.step !== undefined ? { step: p.step, steps: p.steps, epoch: p.epoch, epochs: p.epochs } : {}),
          ...(p.valAccuracy !== undefined ? { valAccuracy: p.valAccuracy } : {}),
        }),
    });
    hooks.report('evaluating');
    const metrics = trained.manifest.metrics;
    if (hooks.signal.aborted) throw new vision.TrainingCancelledError();
    hooks.report('registering');
    const registered = await registerTrainedVersion(deps.db, deps.blobs, deps.gate, {
      artifactDir: out,
      rows: trained.rows,
      parent,
      lineage: { jobId, base: spec.base, sampleIds, baseRows: baseCount, sampleRows: sampleCount },
      createdBy,
    });
    return {
      registered,
      result: {
        version: registered.version,
        releasable: registered.releasable,
        gateReason: registered.gateReason,
        evaluation: registered.metrics,
        validationAccuracy: metrics.validationAccuracy ?? null,
        rows: trained.rows.label.length,
        baseRows: baseCount,
        sampleRows: sampleCount,
        unusableSamples: unusable,
        seconds: {
          bottlenecks: +trained.bottleneckSeconds.toFixed(2),
          head: +trained.trainSeconds.toFixed(2),
          total: +((Date.now() - started) / 1000).toFixed(2),
        },
      },
    };
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
