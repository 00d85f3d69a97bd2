import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { encodeTrainingRows, TRAINING_ROWS_FILE } from '@shelfsight/contracts';
import { createProgress } from '@shelfsight/common';
import type { TrainingRows } from '@shelfsight/contracts';
import { saveModel, type ModelManifest } from '../artifact/artifact';
import { describeBackbone } from '../backbones/backbone';
import { computeBottlenecks, type BottleneckFailure } from '../bottlenecks';
import { countByLabel, loadDataset, splitDataset, type Dataset, type LabeledImage } from '../data/dataset';
import { CENTER_VIEW, distortedView, FLIP_VIEW, ttaViews, type ImageView, type TtaMode } from '../data/views';
import { DatasetError, TrainingCancelledError, TrainOptionsError } from '../errors';

import { Head, type FeatureNorm, type HeadType } from '../head/head';
import { trainEnsemble } from '../head/ensemble';
import { argmax, type EvalRecord, type FeatureSet, type TrainHeadOptions, type TrainHeadResult } from '../head/train';
import { TRAIN_PRESETS } from './presets';
import { predictImages } from './infer';
import { hasDistortions, type DistortionOptions } from '../image/distort';
import { plotTrainingLog } from '../report/svg-charts';
import { openExtraction, type ExtractionOptions } from './context';
import { whichSetByRun } from '../data/runs';

/** The optimisation settings are the head trainer's own. */
type HeadTrainingSettings = Pick<
  TrainHeadOptions,
  'learningRate' | 'optimizer' | 'epochs' | 'steps' | 'batchSize' | 'evalInterval' | 'patience' | 'labelSmoothing' | 'weightDecay' | 'dropout' | 'seed'
>;

export interface TrainModelOptions extends ExtractionOptions, HeadTrainingSettings {
  /** Hash split by photo runs of this many consecutively numbered shots (0 or 1: by file, retrain.py's). */
  groupRuns?: number;
  /** Class folders or CSV `image,label`; may be omitted when `extraRows` holds all the data. */
  data?: string;
  /**
   * Pre-computed rows trained beside the images of `data` (labelled samples' stored
   * embeddings, an earlier version's training set): no image decoding or backbone pass for
   * them. Each row keeps its split (training or validation). Labels may add categories.
   */
  extraRows?: TrainingRows;
  /** Called at each evaluation (once per epoch by default) and at phase changes. */
  onProgress?: (p: TrainModelProgress) => void;
  /** Cooperative cancel: checked after the bottlenecks and at each evaluation; throws TrainingCancelledError. */
  signal?: AbortSignal;
  /** Explicit validation set; otherwise a hash split of `data`. */
  valData?: string;
  /**
   * Explicit testing set (class folders or CSV); otherwise the hash split's testing share
   * of `data`. Testing rows are held out: never trained on, never used to choose the epoch.
   * They are returned in `rows` (split 2) when `keepTesting` (or `trainingRows`) is set, so
   * a registry can freeze them as the evaluation set the trainer never saw.
   */
  testData?: string;
  /** Compute the testing images' bottlenecks and return them in `rows` as split 2 (default: with `trainingRows` or `testData`). */
  keepTesting?: boolean;
  out: string;
  validationPercentage: number;
  testingPercentage: number;
  distortions: DistortionOptions;
  /**
   * Cached views per training image in all: first the fixed ones (centre crop, the TTA
   * views, the mirror when flips are on), the rest distorted draws. Default: the fixed
   * views, plus 6 distorted ones when a distortion is set. Fewer than the fixed views, or
   * more without a distortion to draw them, is refused (`TrainOptionsError`).
   */
  views?: number;
  /** Add distorted views to classes with fewer rows until each has this many. */
  balance?: number;
  tta: TtaMode;
  /**
   * Train the head on sub-labels (e.g. product varieties) and report their labels: the
   * probabilities of a label's sub-labels are summed. Finer targets teach the head more.
   */
  sublabels?: boolean;
  head: HeadType;
  hidden?: number;
  normalize: FeatureNorm;
  /** Train this many heads (seeds seed, seed+1, …) and average them (default 1); trained as batched models on `workers` threads. */
  ensemble?: number;
  parent?: string;
  /**
   * Also write the training rows (`training-rows.bin`: embeddings, labels, split, row ids)
   * into the artifact folder, so the hub's registry can freeze an evaluation set from the
   * held-out rows and retrain from them.
   */
  trainingRows?: boolean;
}

export interface TrainModelProgress {
  phase: 'bottlenecks' | 'training';
  /** Training rows (images' views plus extra rows), once known. */
  rows?: number;
  step?: number;
  steps?: number;
  epoch?: number;
  epochs?: number;
  valAccuracy?: number;
  /** Ensemble member (from 1) and count. */
  member?: number;
  members?: number;
}

export interface TrainModelResult {
  manifest: ModelManifest;
  history: EvalRecord[];
  failed: BottleneckFailure[];
  bottleneckSeconds: number;
  trainSeconds: number;
  totalSeconds: number;
  /** The rows the head was trained and validated on (labels = head outputs), for a registry to keep. */
  rows: TrainingRows;
}

const FAST = TRAIN_PRESETS.fast.settings;
/** The defaults of `trainModel` / `shelf train`: the `fast` preset (head-training values from `DEFAULT_TRAIN_OPTIONS`). */
export const TRAIN_DEFAULTS = {
  validationPercentage: FAST.validationPercentage,
  testingPercentage: FAST.testingPercentage,
  tta: FAST.tta as TtaMode,
  head: FAST.head as HeadType,
  normalize: FAST.normalize as FeatureNorm,
  learningRate: FAST.learningRate,
  optimizer: FAST.optimizer as 'adam' | 'sgd',
  epochs: FAST.epochs,
  batchSize: FAST.batchSize,
  patience: FAST.patience,
  labelSmoothing: FAST.labelSmoothing,
  weightDecay: FAST.weightDecay,
  dropout: FAST.dropout,
  seed: FAST.seed,
};

/**
 * The views cached per training image: the fixed ones (centre, TTA views, mirror when
 * flips are on) and `views − fixed` distorted draws. Throws when `views` cannot be met.
 */
/** The head's training settings from `shelf train`'s options (its length, epochs or steps, is the caller's). */
export function headTrainOptions(opts: TrainModelOptions, numClasses: number): Omit<TrainHeadOptions, 'epochs' | 'steps'> {
  return {
    head: { type: opts.head, hidden: opts.hidden, normalize: opts.normalize },
    numClasses,
    learningRate: opts.learningRate,
    optimizer: opts.optimizer,
    batchSize: opts.batchSize,
    evalInterval: opts.evalInterval,
    patience: opts.patience,
    labelSmoothing: opts.labelSmoothing,
    weightDecay: opts.weightDecay,
    dropout: opts.dropout,
    seed: opts.seed,
  };
}

export function trainingViews(distortions: DistortionOptions, tta: TtaMode, views?: number): { fixed: ImageView[]; distorted: ImageView[] } {
  const fixed: ImageView[] = [CENTER_VIEW, ...ttaViews(tta).filter((v) => v !== CENTER_VIEW)];
  if (distortions.flipLeftRight && !fixed.includes(FLIP_VIEW)) fixed.push(FLIP_VIEW);
  const distort = hasDistortions(distortions);
  const total = views ?? fixed.length + (distort ? 6 : 0);
  const names = fixed.map((v) => v.key).join(', ');
  if (total < fixed.length) {
    throw new TrainOptionsError(`views ${total} per training image is fewer than the ${fixed.length} fixed views of these options (${names}); ask for at least ${fixed.length}`);
  }
  if (total > fixed.length && !distort) {
    throw new TrainOptionsError(`views ${total} per training image needs a distortion (e.g. --random-crop) to draw the ${total - fixed.length} beyond the fixed ones (${names})`);
  }
  return { fixed, distorted: Array.from({ length: total - fixed.length }, (_, i) => distortedView(distortions, i)) };
}

/** retrain.py end to end: bottlenecks (cached), head training with evaluation, artifact + log + plot. */
export async function trainModel(opts: TrainModelOptions): Promise<TrainModelResult> {
  const started = Date.now();
  const extra = opts.extraRows;
  if (!opts.data && !extra) throw new DatasetError('nothing to train on: neither a dataset nor pre-computed rows');
  if (extra && opts.sublabels) throw new DatasetError('pre-computed rows carry labels, not sub-labels: --sublabels cannot be combined with them');
  const data: Dataset = opts.data ? await loadDataset(opts.data) : { source: 'rows', labels: [], images: [] };
  let trainImages: LabeledImage[];
  let valImages: LabeledImage[];
  let testImages: LabeledImage[];
  let split: Record<string, unknown>;
  if (opts.valData) {
    const val: Dataset = await loadDataset(opts.valData);
    trainImages = data.images;
    valImages = val.images;
    testImages = [];
    split = { mode: 'explicit', valData: val.source };
  } else if ((opts.groupRuns ?? 0) > 1) {
    // Whole photo runs on one side: near-identical shots never straddle the split.
    const runs = opts.groupRuns as number;
    const which = (i: LabeledImage) => whichSetByRun(i.path, runs, opts.validationPercentage, opts.testingPercentage);
    trainImages = data.images.filter((i) => which(i) === 'training');
    valImages = data.images.filter((i) => which(i) === 'validation');
    testImages = data.images.filter((i) => which(i) === 'testing');
    split = { mode: 'hash-runs', groupRuns: runs, validationPercentage: opts.validationPercentage, testingPercentage: opts.testingPercentage, testing: testImages.length };
  } else {
    const s = splitDataset(data, opts.validationPercentage, opts.testingPercentage);
    trainImages = s.training;
    valImages = s.validation;
    testImages = s.testing;
    split = { mode: 'hash', validationPercentage: opts.validationPercentage, testingPercentage: opts.testingPercentage, testing: s.testing.length };
  }
  if (opts.testData) {
    const test: Dataset = await loadDataset(opts.testData);
    testImages = test.images;
    split = { ...split, testData: test.source, testing: test.images.length };
  }
  // Sub-label heads report labels, not their outputs: their testing rows are not kept.
  const keepTesting = !opts.sublabels && (opts.keepTesting ?? (!!opts.trainingRows || !!opts.testData));
  if (!keepTesting) testImages = [];
  const labels = extra ? [...new Set([...data.labels, ...extra.labels])].sort() : data.labels;
  // Head outputs: the labels, or with --sublabels every label/sublabel pair.
  const outputKey = (i: LabeledImage) => (opts.sublabels ? `${i.label}/${i.sublabel ?? i.label}` : i.label);
  const outputs = opts.sublabels ? [...new Set(trainImages.map(outputKey))].sort() : labels;
  const labelIndex = new Map(outputs.map((l, i) => [l, i]));
  const groups = opts.sublabels ? outputs.map((o) => labels.indexOf(o.slice(0, o.lastIndexOf('/')))) : undefined;
  const unknown = valImages.filter((i) => !labelIndex.has(outputKey(i)));
  if (unknown.length > 0) throw new DatasetError(`validation set has labels not in the training data: ${[...new Set(unknown.map((u) => u.label))].join(', ')}`);
  const unknownTest = testImages.filter((i) => !labels.includes(i.label));
  if (unknownTest.length > 0) throw new DatasetError(`testing set has labels not in the training data: ${[...new Set(unknownTest.map((u) => u.label))].join(', ')}`);
  const extraTrainLabels = new Set(extra ? [...extra.label].filter((_, i) => extra.split[i] === 0).map((l) => extra.labels[l] as string) : []);
  const missingClasses = labels.filter((l) => !trainImages.some((i) => i.label === l) && !extraTrainLabels.has(l));
  if (missingClasses.length > 0) throw new DatasetError(`no training images for: ${missingClasses.join(', ')}`);

  // Views: the plain centre crop, plus cached distorted views when distortions are on.
  const distort = hasDistortions(opts.distortions);
  // The head learns every view it will see: the centre crop, the TTA views, and the mirror image when flips are on.
  const { fixed: baseViews, distorted: aug } = trainingViews(opts.distortions, opts.tta, opts.views);
  const augViews = aug.length;
  const counts = countByLabel(trainImages);
  const balanceDistortions: DistortionOptions = distort ? opts.distortions : { flipLeftRight: true, crop: 10, scale: 20, brightness: 20 };
  const requestsTrain = trainImages.map((img) => {
    let views = [...baseViews, ...aug];
    if (opts.balance) {
      const have = (counts.get(img.label) ?? 1) * views.length;
      const extra = Math.max(0, Math.ceil((opts.balance - have) / (counts.get(img.label) ?? 1)));
      views = views.concat(Array.from({ length: extra }, (_, i) => distortedView(balanceDistortions, augViews + i)));
    }
    return { path: img.path, views };
  });
  const valViewList = ttaViews(opts.tta);
  const requestsVal = valImages.map((img) => ({ path: img.path, views: valViewList }));
  const requestsTest = testImages.map((img) => ({ path: img.path, views: valViewList }));

  const totalJobs = [...requestsTrain, ...requestsVal, ...requestsTest].reduce((n, r) => n + r.views.length, 0);
  opts.onProgress?.({ phase: 'bottlenecks' });
  const ctx = await openExtraction(opts, totalJobs);
  const { logger } = ctx;
  const bStart = Date.now();
  let bottlenecks;
  try {
    const progress = createProgress('bottlenecks', totalJobs);
    let shown = 0;
    const onProgress = (d: number) => {
      if (d > shown) progress.tick(d - shown);
      shown = Math.max(shown, d);
    };
    const tr = await computeBottlenecks(requestsTrain, ctx.extractor, ctx.cache, { logger, onProgress });
    const base = shown;
    const va = await computeBottlenecks(requestsVal, ctx.extractor, ctx.cache, { logger, onProgress: (d) => onProgress(base + d) });
    const base2 = shown;
    const te = await computeBottlenecks(requestsTest, ctx.extractor, ctx.cache, { logger, onProgress: (d) => onProgress(base2 + d) });
    progress.done(`cache hits ${tr.cacheHits + va.cacheHits + te.cacheHits}, computed ${tr.computed + va.computed + te.computed}`);
    bottlenecks = { tr, va, te };
  } finally {
    await ctx.close();
  }
  const bottleneckSeconds = (Date.now() - bStart) / 1000;
  const backbone = ctx.extractor.backbone;
  const failed = [...bottlenecks.tr.failed, ...bottlenecks.va.failed, ...bottlenecks.te.failed];
  if (opts.signal?.aborted) throw new TrainingCancelledError();
  if (extra && extra.dim !== backbone.featureDim) {
    throw new DatasetError(`pre-computed rows have dim ${extra.dim}, backbone ${backbone.id} gives ${backbone.featureDim}`);
  }

  const pack = (images: LabeledImage[], feats: Map<string, Map<string, Float32Array>>, extraSplit: number): FeatureSet => {
    const rows: Array<{ f: Float32Array; y: number; g: number }> = [];
    images.forEach((img, g) => {
      const views = feats.get(img.path);
      if (!views) return;
      for (const f of views.values()) rows.push({ f, y: labelIndex.get(outputKey(img)) as number, g });
    });
    // Pre-computed rows: one image each, after the dataset's images.
    if (extra) {
      for (let i = 0; i < extra.label.length; i++) {
        if (extra.split[i] !== extraSplit) continue;
        const name = extra.labels[extra.label[i] as number] as string;
        const y = labelIndex.get(name);
        if (y === undefined) throw new DatasetError(`pre-computed row label "${name}" is not a head output`);
        rows.push({ f: extra.x.subarray(i * extra.dim, (i + 1) * extra.dim), y, g: images.length + i });
      }
    }
    const dim = backbone.featureDim;
    const x = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => x.set(r.f, i * dim));
    return { dim, x, y: Int32Array.from(rows.map((r) => r.y)), group: Int32Array.from(rows.map((r) => r.g)) };
  };
  const train = pack(trainImages, bottlenecks.tr.features, 0);
  const val = pack(valImages, bottlenecks.va.features, 1);
  // Held out (split 2): neither trained on nor used to choose the epoch; only returned in `rows`.
  const test = pack(testImages, bottlenecks.te.features, 2);
  logger.info('training head', { rows: train.y.length, valRows: val.y.length, classes: labels.length, head: opts.head });

  // Row ids in pack order (images' views, then pre-computed rows), per split: `image:<path>#<view>`, or the row's own id.
  const imageIds = (images: LabeledImage[], feats: Map<string, Map<string, Float32Array>>) =>
    images.flatMap((img) => [...(feats.get(img.path)?.keys() ?? [])].map((view) => `image:${relative(data.source, img.path)}#${view}`));
  const extraIds = (s: number) => (extra ? [...extra.label.keys()].filter((i) => extra.split[i] === s).map((i) => extra.ids?.[i] ?? `row:${i}`) : []);
  const rowIds = [
    ...imageIds(trainImages, bottlenecks.tr.features), ...extraIds(0),
    ...imageIds(valImages, bottlenecks.va.features), ...extraIds(1),
    ...imageIds(testImages, bottlenecks.te.features), ...extraIds(2),
  ];

  await mkdir(opts.out, { recursive: true });
  /** Evaluations of every member, in training order (`member` counts from 1). */
  const history: Array<EvalRecord & { member: number }> = [];
  const tStart = Date.now();
  const stepsPerEpoch = Math.ceil(train.y.length / Math.max(1, Math.min(opts.batchSize, train.y.length)));
  const totalSteps = opts.steps ?? Math.max(1, Math.round((opts.epochs ?? TRAIN_DEFAULTS.epochs) * stepsPerEpoch));
  const members = opts.ensemble ?? 1;
  const progress = createProgress(members > 1 ? `train ${members} heads` : 'train', totalSteps * members);
  const lastStep = new Array<number>(members).fill(0);
  const epochs = totalSteps / stepsPerEpoch;
  opts.onProgress?.({ phase: 'training', rows: train.y.length, step: 0, steps: totalSteps, epoch: 0, epochs, member: 1, members });
  const memberResults: TrainHeadResult[] = await trainEnsemble(
    train,
    val.y.length > 0 ? val : undefined,
    {
      ...headTrainOptions(opts, outputs.length),
      steps: totalSteps,
    },
    members,
    {
      workers: opts.workers,
      signal: opts.signal,
      onEval: (rec, m) => {
        const member = m + 1;
        history.push({ ...rec, member });
        logger.debug('evaluation', { ...rec, member });
        const note =
          `${members > 1 ? `head ${member}: ` : ''}loss ${rec.trainLoss.toFixed(3)} train ${(rec.trainAccuracy * 100).toFixed(1)}%` +
          (rec.valAccuracy !== undefined ? ` val ${(rec.valAccuracy * 100).toFixed(1)}%` : '');
        progress.tick(rec.step - (lastStep[m] as number), note);
        lastStep[m] = rec.step;
        opts.onProgress?.({ phase: 'training', rows: train.y.length, step: rec.step, steps: totalSteps, epoch: rec.epoch, epochs, valAccuracy: rec.valAccuracy, member, members });
      },
    },
  );
  const bestVals = memberResults.map((r) => r.bestValAccuracy).filter((a): a is number => a !== undefined);
  progress.done(bestVals.length ? `best val ${bestVals.map((a) => (a * 100).toFixed(1) + '%').join(' ')}` : 'done');
  history.sort((a, b) => a.member - b.member || a.step - b.step);
  const result = { ...(memberResults[0] as TrainHeadResult), head: Head.ensemble(memberResults.map((r) => r.head)) };
  const trainSeconds = (Date.now() - tStart) / 1000;
  if (groups) result.head.groups = groups;
  // Validation accuracy on the reported labels (sub-label probabilities summed, TTA views averaged).
  const scoredVal = valImages.filter((i) => bottlenecks.va.features.has(i.path));
  const valProbs = predictImages(result.head, scoredVal.map((i) => [...(bottlenecks.va.features.get(i.path) as Map<string, Float32Array>).values()]));
  const extraVal: Array<{ f: Float32Array; label: string }> = [];
  if (extra) {
    for (let i = 0; i < extra.label.length; i++) {
      if (extra.split[i] === 1) extraVal.push({ f: extra.x.subarray(i * extra.dim, (i + 1) * extra.dim), label: extra.labels[extra.label[i] as number] as string });
    }
  }
  const extraValProbs = extraVal.length ? predictImages(result.head, extraVal.map((r) => [r.f])) : [];
  const valCorrect =
    valProbs.filter((p, k) => argmax(p) === labels.indexOf((scoredVal[k] as LabeledImage).label)).length +
    extraValProbs.filter((p, k) => argmax(p) === labels.indexOf((extraVal[k] as { label: string }).label)).length;
  const valScored = scoredVal.length + extraVal.length;
  const valAccuracy = valScored ? valCorrect / valScored : null;

  const training = {
    data: data.source,
    split,
    images: { training: trainImages.length, validation: valImages.length, testing: testImages.length, failed: failed.length },
    rows: { training: train.y.length, validation: val.y.length, testing: test.y.length, ...(extra ? { extra: extra.label.length } : {}) },
    distortions: opts.distortions,
    views: baseViews.length + augViews,
    augViews,
    extraRows: opts.extraRows?.label.length ?? 0,
    balance: opts.balance ?? null,
    tta: opts.tta,
    sublabels: !!opts.sublabels,
    outputs: outputs.length,
    head: opts.head,
    hidden: opts.head === 'mlp' ? (opts.hidden ?? TRAIN_PRESETS.fast.settings.hidden) : null,
    normalize: opts.normalize,
    learningRate: opts.learningRate,
    optimizer: opts.optimizer,
    epochs: opts.epochs ?? null,
    steps: result.steps,
    batchSize: opts.batchSize,
    evalInterval: opts.evalInterval ?? null,
    patience: opts.patience,
    labelSmoothing: opts.labelSmoothing,
    weightDecay: opts.weightDecay,
    dropout: opts.dropout,
    seed: opts.seed,
    ensemble: members,
    stoppedEarly: memberResults.some((r) => r.stoppedEarly),
    bestStep: members > 1 ? memberResults.map((r) => r.bestStep) : result.bestStep,
    seconds: { bottlenecks: +bottleneckSeconds.toFixed(1), head: +trainSeconds.toFixed(1) },
  };
  const last = history[history.length - 1];
  const metrics = {
    validationAccuracy: valAccuracy,
    ...(groups && members === 1 ? { validationSublabelAccuracy: result.bestValAccuracy ?? null } : {}),
    ...(members > 1 ? { memberValidationAccuracy: memberResults.map((r) => r.bestValAccuracy ?? null) } : {}),
    validationImages: new Set(val.group).size,
    trainAccuracy: last?.trainAccuracy ?? null,
  };
  const manifest = await saveModel(opts.out, {
    head: result.head,
    labels,
    backbone: describeBackbone(backbone),
    training,
    metrics,
    parent: opts.parent,
    ...(groups ? { groups, outputs } : {}),
  });
  result.head.dispose();
  if (opts.trainingRows) {
    // Rows carry the reported labels (sub-labels folded into their label).
    const reported = (y: Int32Array) => Uint32Array.from(y, (o) => (groups ? (groups[o] as number) : o));
    const x = new Float32Array(train.x.length + val.x.length + test.x.length);
    x.set(train.x);
    x.set(val.x, train.x.length);
    x.set(test.x, train.x.length + val.x.length);
    await writeFile(
      join(opts.out, TRAINING_ROWS_FILE),
      encodeTrainingRows({
        dim: train.dim,
        labels,
        label: Uint32Array.from([...reported(train.y), ...reported(val.y), ...reported(test.y)]),
        split: Uint8Array.from([...new Array<number>(train.y.length).fill(0), ...new Array<number>(val.y.length).fill(1), ...new Array<number>(test.y.length).fill(2)]),
        x,
        ids: rowIds,
      }),
    );
  }
  // The log and its plot live beside the artifact files (loaders ignore them).
  const logPath = join(opts.out, 'training-log.jsonl');
  await writeFile(logPath, '');
  for (const rec of history) await appendFile(logPath, JSON.stringify(rec) + '\n');
  const title = `${backbone.id} · ${opts.head} head · ${labels.length} classes${members > 1 ? ` · member 1 of ${members}` : ''}`;
  await writeFile(join(opts.out, 'training-log.png'), await plotTrainingLog(history.filter((h) => h.member === 1), title));
  if (failed.length > 0) await writeFile(join(opts.out, 'skipped-images.json'), JSON.stringify(failed, null, 2) + '\n');
  logger.info('model written', { out: opts.out, version: manifest.version, validationAccuracy: metrics.validationAccuracy, skipped: failed.length });
  const rows = { ...toTrainingRows(train, val, test, outputs), ids: rowIds };
  return { manifest, history, failed, bottleneckSeconds, trainSeconds, totalSeconds: (Date.now() - started) / 1000, rows };
}

/** The packed training, validation and held-out testing rows as one set (labels = head outputs; split 0, 1, 2). */
function toTrainingRows(train: FeatureSet, val: FeatureSet, test: FeatureSet, outputs: string[]): TrainingRows {
  const n = train.y.length + val.y.length + test.y.length;
  const x = new Float32Array(n * train.dim);
  x.set(train.x, 0);
  x.set(val.x, train.x.length);
  x.set(test.x, train.x.length + val.x.length);
  const label = new Uint32Array(n);
  label.set(train.y, 0);
  label.set(val.y, train.y.length);
  label.set(test.y, train.y.length + val.y.length);
  const split = new Uint8Array(n);
  split.fill(1, train.y.length);
  split.fill(2, train.y.length + val.y.length);
  return { dim: train.dim, labels: outputs, label, split, x };
}

