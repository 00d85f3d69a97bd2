import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger, createProgress } from '@shelfsight/common';
import { saveModel } from '../artifact/artifact';
import { describeBackbone } from '../backbones/backbone';
import { loadBackbone } from '../backbones/resolve';
import { loadDataset, type Dataset, type LabeledImage } from '../data/dataset';
import { whichSetByRun } from '../data/runs';
import { ttaViews } from '../data/views';
import { DatasetError, TrainOptionsError } from '../errors';
import { packActivations } from '../tail/activation-set';
import { computeActivations } from '../tail/activations';
import { fitTuned } from '../tail/fit';
import type { QuantisedActivation } from '../cache/activation-cache';
import type { TrainModelOptions, TrainModelResult } from './train-model';
import { headTrainOptions, trainingViews } from './train-model';

/** Fine-tuning knobs of `shelf train --tune-from` (see `TUNE_DEFAULTS`). */
export interface TuneSettings {
  /** Freeze point (name or node) of the backbone: the layers after it are trained with the head. */
  tuneFrom?: string;
  tuneEpochs?: number;
  tailLearningRate?: number;
  /** The head's learning rate while it is tuned with the tail. */
  tuneHeadLearningRate?: number;
  decayToPretrained?: number;
  tuneBatchSize?: number;
  /** Hash split by photo runs of this many consecutive shots (0 or 1: by file, retrain.py's). */
  groupRuns?: number;
}

export const TUNE_DEFAULTS = {
  tuneEpochs: 4,
  tailLearningRate: 1e-4,
  tuneHeadLearningRate: 3e-4,
  decayToPretrained: 1e-3,
  tuneBatchSize: 64,
};

/**
 * `shelf train --tune-from <freeze point>`: freeze-point activations of every view
 * (quantised, cached on disk), then `fitTuned` — a first head on the frozen features, the
 * tail and that head tuned together, the ensemble of heads on the tuned features — and one
 * artifact: the tuned tail after the head's weights in `head.bin`, pinned to the
 * backbone's checksum and the freeze point.
 */
export async function trainTunedModel(opts: TrainModelOptions & TuneSettings): Promise<TrainModelResult> {
  const started = Date.now();
  const logger = opts.logger ?? createLogger('vision');
  const tuneFrom = opts.tuneFrom;
  if (!tuneFrom) throw new TrainOptionsError('trainTunedModel needs a freeze point (--tune-from)');
  if (!opts.data) throw new DatasetError('--tune-from trains on images: --data is required');
  if (opts.extraRows) throw new TrainOptionsError('--tune-from cannot train on pre-computed embedding rows (they carry no freeze-point activations)');
  const data: Dataset = await loadDataset(opts.data);
  let trainImages: LabeledImage[];
  let valImages: LabeledImage[];
  let split: Record<string, unknown>;
  if (opts.valData) {
    const val = await loadDataset(opts.valData);
    trainImages = data.images;
    valImages = val.images;
    split = { mode: 'explicit', valData: val.source };
  } else {
    const runs = opts.groupRuns ?? 0;
    const which = (p: string) => whichSetByRun(p, Math.max(1, runs), opts.validationPercentage, 0);
    trainImages = data.images.filter((i) => which(i.path) === 'training');
    valImages = data.images.filter((i) => which(i.path) === 'validation');
    split = { mode: runs > 1 ? 'hash-runs' : 'hash', validationPercentage: opts.validationPercentage, testingPercentage: 0, ...(runs > 1 ? { groupRuns: runs } : {}) };
  }
  const labels = data.labels;
  const outputKey = (i: LabeledImage) => (opts.sublabels ? `${i.label}/${i.sublabel ?? i.label}` : i.label);
  const outputs = opts.sublabels ? [...new Set(trainImages.map(outputKey))].sort() : labels;
  const outputIndex = new Map(outputs.map((l, i) => [l, i]));
  const groups = opts.sublabels ? outputs.map((o) => labels.indexOf(o.slice(0, o.lastIndexOf('/')))) : undefined;
  const unknown = valImages.filter((i) => !outputIndex.has(outputKey(i)));
  if (unknown.length) throw new DatasetError(`validation set has labels not in the training data: ${[...new Set(unknown.map((u) => outputKey(u)))].join(', ')}`);
  const { fixed, distorted } = trainingViews(opts.distortions, opts.tta, opts.views);
  const trainViews = [...fixed, ...distorted];
  const valViews = ttaViews(opts.tta);

  opts.onProgress?.({ phase: 'bottlenecks' });
  const acts = await computeActivations(
    { backbone: opts.backbone, freezePoint: tuneFrom, workers: opts.workers, offline: opts.offline, cacheDir: opts.cacheDir, logger, extractor: opts.extractor },
    [trainImages.map((i) => ({ path: i.path, views: trainViews })), valImages.map((i) => ({ path: i.path, views: valViews }))],
    'activations',
  );
  const [tr, va] = acts.sets as [(typeof acts.sets)[number], (typeof acts.sets)[number]];
  const fp = acts.freezePoint;
  const size = fp.shape[0] * fp.shape[1] * fp.shape[2];
  const rows: Array<{ a: QuantisedActivation; y: number; g: number }> = [];
  const add = (images: LabeledImage[], feats: Map<string, Map<string, QuantisedActivation>>, base: number) =>
    images.forEach((img, k) => {
      for (const a of feats.get(img.path)?.values() ?? []) rows.push({ a, y: outputIndex.get(outputKey(img)) as number, g: base + k });
    });
  add(trainImages, tr.features, 0);
  const trainCount = rows.length;
  add(valImages, va.features, trainImages.length);
  const set = packActivations(rows, size);
  const trainRows = Int32Array.from({ length: trainCount }, (_, i) => i);
  const valRows = Int32Array.from({ length: rows.length - trainCount }, (_, i) => trainCount + i);

  // The pretrained tail comes from the backbone's weights (read in this thread once).
  const backbone = await loadBackbone(opts.backbone, { offline: opts.offline, logger });
  const pretrained = backbone.pretrainedTail?.(fp);
  const info = describeBackbone(backbone);
  backbone.dispose();
  if (!pretrained) throw new TrainOptionsError(`backbone ${info.id} cannot give the pretrained tail of ${fp.name}`);

  const tStart = Date.now();
  const epochs = opts.tuneEpochs ?? TUNE_DEFAULTS.tuneEpochs;
  const progress = createProgress(`tune ${fp.name}`, epochs);
  const members = opts.ensemble ?? 1;
  const headOpts = { ...headTrainOptions(opts, outputs.length), epochs: opts.epochs, steps: opts.steps };
  const tune = {
    epochs,
    batchSize: opts.tuneBatchSize ?? TUNE_DEFAULTS.tuneBatchSize,
    tailLearningRate: opts.tailLearningRate ?? TUNE_DEFAULTS.tailLearningRate,
    headLearningRate: opts.tuneHeadLearningRate ?? TUNE_DEFAULTS.tuneHeadLearningRate,
    decayToPretrained: opts.decayToPretrained ?? TUNE_DEFAULTS.decayToPretrained,
    labelSmoothing: opts.labelSmoothing,
    dropout: opts.dropout,
    seed: opts.seed,
    firstTrainable: 0,
  };
  const fit = await fitTuned(set, trainRows, valRows.length ? valRows : undefined, pretrained.spec, pretrained.params, {
    head: headOpts,
    members,
    tune,
    groups,
    workers: opts.workers,
    signal: opts.signal,
    onEpoch: (e) => {
      progress.tick(1, `loss ${e.trainLoss.toFixed(3)}${e.valAccuracy !== undefined ? ` val ${(e.valAccuracy * 100).toFixed(1)}%` : ''}`);
      opts.onProgress?.({ phase: 'training', step: e.epoch, steps: epochs, epoch: e.epoch, epochs, valAccuracy: e.valAccuracy });
    },
    onPhase: (phase, s) => logger.info('tune phase', { phase, seconds: +s.toFixed(1) }),
  });
  progress.done(`best epoch ${fit.bestEpoch}`);
  const trainSeconds = (Date.now() - tStart) / 1000;
  await mkdir(opts.out, { recursive: true });
  const training = {
    data: data.source,
    split,
    images: { training: trainImages.length, validation: valImages.length, testing: 0, failed: tr.failed.length + va.failed.length },
    rows: { training: trainCount, validation: rows.length - trainCount, testing: 0 },
    distortions: opts.distortions,
    views: trainViews.length,
    tta: opts.tta,
    sublabels: !!opts.sublabels,
    outputs: outputs.length,
    head: opts.head,
    hidden: opts.head === 'mlp' ? (opts.hidden ?? null) : null,
    normalize: opts.normalize,
    learningRate: opts.learningRate,
    optimizer: opts.optimizer,
    epochs: opts.epochs ?? null,
    batchSize: opts.batchSize,
    labelSmoothing: opts.labelSmoothing,
    dropout: opts.dropout,
    seed: opts.seed,
    ensemble: members,
    tune: { freezePoint: fp.name, node: fp.node, ...tune, bestEpoch: fit.bestEpoch, history: fit.tuneHistory },
    seconds: { activations: +acts.seconds.toFixed(1), ...Object.fromEntries(Object.entries(fit.seconds).map(([k, v]) => [k, +v.toFixed(1)])) },
  };
  const metrics = {
    validationAccuracy: fit.valAccuracy ?? null,
    firstHeadValidationAccuracy: fit.firstHeadValAccuracy ?? null,
    tunedHeadValidationAccuracy: fit.tunedHeadValAccuracy ?? null,
    validationImages: valImages.length,
  };
  const manifest = await saveModel(opts.out, {
    head: fit.head,
    labels,
    backbone: info,
    training,
    metrics,
    parent: opts.parent,
    ...(groups ? { groups, outputs } : {}),
    tail: { freezePoint: fp, spec: pretrained.spec, params: fit.tail },
  });
  fit.head.dispose();
  await writeFile(join(opts.out, 'training-log.jsonl'), fit.tuneHistory.map((h) => JSON.stringify(h)).join('\n') + '\n');
  const failed = [...tr.failed, ...va.failed];
  if (failed.length > 0) await writeFile(join(opts.out, 'skipped-images.json'), JSON.stringify(failed, null, 2) + '\n');
  logger.info('tuned model written', { out: opts.out, version: manifest.version, validationAccuracy: metrics.validationAccuracy });
  return {
    manifest,
    history: [],
    failed,
    bottleneckSeconds: acts.seconds,
    trainSeconds,
    totalSeconds: (Date.now() - started) / 1000,
    rows: { dim: fp.shape[2], labels: outputs, label: new Uint32Array(0), split: new Uint8Array(0), x: new Float32Array(0) },
  };
}
