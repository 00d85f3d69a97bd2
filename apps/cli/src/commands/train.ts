import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, ConfigError, loadConfig } from '@shelfsight/common';
import { resolveTrainPreset, TRAIN_PRESET_NAMES, TRAIN_PRESETS, trainModel, trainTunedModel, TUNE_DEFAULTS, type TrainSettings } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom } from '../options';
import { visionAction, EXTRACTION_SPEC, extractionFrom, TTA } from './vision-options';

/** "(fast: 0.01, accurate: 0.001)": what each preset sets for a setting. */
function byPreset(pick: (s: TrainSettings) => unknown): string {
  return `(${TRAIN_PRESET_NAMES.map((p) => `${p}: ${JSON.stringify(pick(TRAIN_PRESETS[p].settings) ?? null)}`).join(', ')})`;
}
const pct = () => z.coerce.number().min(0).max(100).optional();

/** Settings without defaults of their own: unset means "the preset's value". */
export const TRAIN_SPEC = {
  preset: { env: 'SHELF_TRAIN_PRESET', flag: 'preset', description: `settings to start from: ${TRAIN_PRESET_NAMES.map((p) => `${p} = ${TRAIN_PRESETS[p].description}`).join('; ')}; explicit options override them`, schema: z.enum(TRAIN_PRESET_NAMES as [string, ...string[]]).default('fast') },
  data: { env: 'SHELF_TRAIN_DATA', flag: 'data', description: 'training images: class folders or CSV image,label', schema: z.string().min(1) },
  valData: { env: 'SHELF_VAL_DATA', flag: 'val-data', description: 'validation images (default: hash split of --data)', schema: cfg.optionalString() },
  testData: { env: 'SHELF_TEST_DATA', flag: 'test-data', description: 'testing images, never trained on nor used to pick the epoch; written to training-rows.bin as split 2, the registry\u2019s evaluation set (default: hash split of --data)', schema: cfg.optionalString() },
  out: { env: 'SHELF_MODEL_OUT', flag: 'out', description: 'model artifact folder to write', schema: z.string().min(1) },
  backbone: { env: 'SHELF_BACKBONE', flag: 'backbone', description: `backbone: built-in name, folder, catalogue name or URL (${TRAIN_PRESET_NAMES.map((p) => `${p}: ${'backbone' in TRAIN_PRESETS[p] ? JSON.stringify(TRAIN_PRESETS[p].backbone) : 'required'}`).join(', ')})`, schema: cfg.optionalString() },
  validationPercentage: { env: 'SHELF_VALIDATION_PERCENTAGE', flag: 'validation-percentage', description: `percent of --data used for validation (hash split) ${byPreset((s) => s.validationPercentage)}`, schema: pct() },
  testingPercentage: { env: 'SHELF_TESTING_PERCENTAGE', flag: 'testing-percentage', description: `percent of --data held out for \`shelf eval\` (hash split) ${byPreset((s) => s.testingPercentage)}`, schema: pct() },
  head: { env: 'SHELF_HEAD', flag: 'head', description: `head type: softmax (retrain.py) or mlp ${byPreset((s) => s.head)}`, schema: z.enum(['softmax', 'mlp']).optional() },
  hidden: { env: 'SHELF_HIDDEN', flag: 'hidden', description: `hidden units of the mlp head ${byPreset((s) => s.hidden)}`, schema: z.coerce.number().int().min(1).optional() },
  normalize: { env: 'SHELF_NORMALIZE', flag: 'normalize', description: `feature normalisation: l2 or none ${byPreset((s) => s.normalize)}`, schema: z.enum(['l2', 'none']).optional() },
  learningRate: { env: 'SHELF_LEARNING_RATE', flag: 'learning-rate', description: `learning rate ${byPreset((s) => s.learningRate)}`, schema: z.coerce.number().positive().optional() },
  optimizer: { env: 'SHELF_OPTIMIZER', flag: 'optimizer', description: `adam or sgd ${byPreset((s) => s.optimizer)}`, schema: z.enum(['adam', 'sgd']).optional() },
  epochs: { env: 'SHELF_EPOCHS', flag: 'epochs', description: `passes over the training rows ${byPreset((s) => s.epochs)}`, schema: z.coerce.number().positive().optional() },
  steps: { env: 'SHELF_STEPS', flag: 'steps', description: 'training steps (overrides --epochs)', schema: z.coerce.number().int().positive().optional() },
  batchSize: { env: 'SHELF_BATCH_SIZE', flag: 'batch-size', description: `training batch size ${byPreset((s) => s.batchSize)}`, schema: z.coerce.number().int().min(1).optional() },
  evalInterval: { env: 'SHELF_EVAL_INTERVAL', flag: 'eval-interval', description: 'evaluate every N steps (default: each epoch)', schema: z.coerce.number().int().positive().optional() },
  patience: { env: 'SHELF_PATIENCE', flag: 'patience', description: `early stopping: evaluations without improvement (0: off) ${byPreset((s) => s.patience)}`, schema: z.coerce.number().int().min(0).optional() },
  labelSmoothing: { env: 'SHELF_LABEL_SMOOTHING', flag: 'label-smoothing', description: `label smoothing (0..1) ${byPreset((s) => s.labelSmoothing)}`, schema: z.coerce.number().min(0).max(1).optional() },
  weightDecay: { env: 'SHELF_WEIGHT_DECAY', flag: 'weight-decay', description: `L2 penalty on head weights ${byPreset((s) => s.weightDecay)}`, schema: z.coerce.number().min(0).optional() },
  dropout: { env: 'SHELF_DROPOUT', flag: 'dropout', description: `dropout on the mlp hidden layer (0..1) ${byPreset((s) => s.dropout)}`, schema: z.coerce.number().min(0).max(0.95).optional() },
  seed: { env: 'SHELF_SEED', flag: 'seed', description: `random seed of the first head ${byPreset((s) => s.seed)}`, schema: z.coerce.number().int().min(0).optional() },
  ensemble: { env: 'SHELF_ENSEMBLE', flag: 'ensemble', description: `train this many heads (seeds seed, seed+1, …; batched, on all --workers) and average their probabilities ${byPreset((s) => s.ensemble)}`, schema: z.coerce.number().int().min(1).max(16).optional() },
  tta: { env: 'SHELF_TTA', flag: 'tta', description: `test-time augmentation recorded in the model: ${TTA.options.join(', ')} (one backbone pass per view: 1, 2, 4, 1, 2) ${byPreset((s) => s.tta)}`, schema: TTA.optional() },
  views: { env: 'SHELF_VIEWS', flag: 'views', description: `cached views per training image in all: the fixed ones (centre, the TTA views, the mirror with --flip-left-right) first, the rest distorted (default: fixed + 6 with a distortion) ${byPreset((s) => s.views)}`, schema: z.coerce.number().int().min(1).max(64).optional() },
  augViews: { env: 'SHELF_AUG_VIEWS', flag: 'aug-views', description: 'replaced by --views (refused: it counted distorted views only, so 3 gave 7 views)', schema: z.string().optional() },
  balance: { env: 'SHELF_BALANCE', flag: 'balance', description: 'add distorted views until every class has this many rows', schema: z.coerce.number().int().positive().optional() },
  randomCrop: { env: 'SHELF_RANDOM_CROP', flag: 'random-crop', description: `distortion: percent margin to crop randomly ${byPreset((s) => s.distortions.crop)}`, schema: pct() },
  randomScale: { env: 'SHELF_RANDOM_SCALE', flag: 'random-scale', description: `distortion: percent to scale up randomly ${byPreset((s) => s.distortions.scale)}`, schema: pct() },
  randomBrightness: { env: 'SHELF_RANDOM_BRIGHTNESS', flag: 'random-brightness', description: `distortion: percent brightness change ${byPreset((s) => s.distortions.brightness)}`, schema: pct() },
  randomBlur: { env: 'SHELF_RANDOM_BLUR', flag: 'random-blur', description: 'distortion: max Gaussian blur sigma (pixels)', schema: z.coerce.number().min(0).max(20).optional() },
  randomNoise: { env: 'SHELF_RANDOM_NOISE', flag: 'random-noise', description: 'distortion: max noise std-dev (0..255 units)', schema: z.coerce.number().min(0).max(128).optional() },
  flipLeftRight: { env: 'SHELF_FLIP_LEFT_RIGHT', flag: 'flip-left-right', description: `distortion: random horizontal flips (--flip-left-right=false turns a preset's off) ${byPreset((s) => !!s.distortions.flipLeftRight)}`, schema: cfg.bool(false) },
  sublabels: {
    env: 'SHELF_SUBLABELS',
    flag: 'sublabels',
    description: `train the head on sub-labels (CSV column sublabel, or sub-folders of class folders) and report labels ${byPreset((s) => s.sublabels)}`,
    schema: cfg.bool(false),
  },
  trainingRows: {
    env: 'SHELF_TRAINING_ROWS',
    flag: 'training-rows',
    description: 'also write the training rows (embeddings + labels, training-rows.bin) into --out, for `shelf models register`',
    schema: cfg.bool(false),
  },
  tuneFrom: { env: 'SHELF_TUNE_FROM', flag: 'tune-from', description: 'fine-tune the backbone after this freeze point (its name, e.g. last-block or last-pointwise, or its node) together with the head; the artifact carries the tuned tail', schema: cfg.optionalString() },
  tuneEpochs: { env: 'SHELF_TUNE_EPOCHS', flag: 'tune-epochs', description: `epochs of tail + head tuning, each image once through one of its views (default ${TUNE_DEFAULTS.tuneEpochs})`, schema: z.coerce.number().int().min(1).optional() },
  tailLearningRate: { env: 'SHELF_TAIL_LEARNING_RATE', flag: 'tail-learning-rate', description: `Adam learning rate of the tuned tail (default ${TUNE_DEFAULTS.tailLearningRate})`, schema: z.coerce.number().positive().optional() },
  tuneLearningRate: { env: 'SHELF_TUNE_LEARNING_RATE', flag: 'tune-learning-rate', description: `learning rate of the head while tuned with the tail (default ${TUNE_DEFAULTS.tuneHeadLearningRate})`, schema: z.coerce.number().positive().optional() },
  decayToPretrained: { env: 'SHELF_DECAY_TO_PRETRAINED', flag: 'decay-to-pretrained', description: `weight decay of the tail towards its pretrained weights (default ${TUNE_DEFAULTS.decayToPretrained})`, schema: z.coerce.number().min(0).optional() },
  groupRuns: { env: 'SHELF_GROUP_RUNS', flag: 'group-runs', description: 'hash split by runs of this many consecutively numbered photos in a folder, so near-identical shots stay on one side (0: by file, retrain.py\u2019s)', schema: z.coerce.number().int().min(0).optional() },
  randomRotate: { env: 'SHELF_RANDOM_ROTATE', flag: 'random-rotate', description: 'distortion: max rotation in degrees', schema: z.coerce.number().min(0).max(45).optional() },
  ...EXTRACTION_SPEC,
};

/** `shelf train`: retrain.py — train a head on a backbone's bottlenecks and write a model artifact. */
export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('Train a head on cached bottlenecks of --data and write a model artifact to --out (log: training-log.jsonl/.png inside); --preset fast (default) or accurate');
  addConfigOptions(cmd, TRAIN_SPEC);
  cmd.action(visionAction(async (opts: Record<string, unknown>) => {
    const flags = flagsFrom(TRAIN_SPEC, opts);
    const c = loadConfig(TRAIN_SPEC, flags);
    // A switch has a default of its own; the preset's value holds unless it was given.
    const given = (key: 'flipLeftRight' | 'sublabels') => flags[key] !== undefined || !!process.env[TRAIN_SPEC[key].env];
    if (c.augViews !== undefined) {
      throw new ConfigError(
        '--aug-views (SHELF_AUG_VIEWS) is replaced by --views N (SHELF_VIEWS): the number of cached views per training image in all. ' +
          '--aug-views K counted only the distorted ones, on top of the centre, TTA and mirror views (K = 3 with --tta zoom-flip --flip-left-right gave 7)',
      );
    }
    const s = resolveTrainPreset(c.preset as keyof typeof TRAIN_PRESETS, {
      backbone: c.backbone,
      validationPercentage: c.validationPercentage,
      testingPercentage: c.testingPercentage,
      distortions: {
        flipLeftRight: given('flipLeftRight') ? c.flipLeftRight : undefined,
        crop: c.randomCrop,
        scale: c.randomScale,
        brightness: c.randomBrightness,
        blur: c.randomBlur,
        noise: c.randomNoise,
        rotate: c.randomRotate,
      },
      views: c.views,
      tta: c.tta,
      sublabels: given('sublabels') ? c.sublabels : undefined,
      head: c.head,
      hidden: c.hidden,
      normalize: c.normalize,
      learningRate: c.learningRate,
      optimizer: c.optimizer,
      epochs: c.epochs,
      batchSize: c.batchSize,
      patience: c.patience,
      labelSmoothing: c.labelSmoothing,
      weightDecay: c.weightDecay,
      dropout: c.dropout,
      seed: c.seed,
      ensemble: c.ensemble,
    });
    const tuneFrom = c.tuneFrom ?? s.tuneFrom;
    const result = await (tuneFrom ? trainTunedModel : trainModel)({
      ...extractionFrom(c),
      ...s,
      data: c.data,
      valData: c.valData,
      testData: c.testData,
      out: c.out,
      steps: c.steps,
      evalInterval: c.evalInterval,
      balance: c.balance,
      trainingRows: c.trainingRows,
      tuneFrom,
      tuneEpochs: c.tuneEpochs ?? s.tuneEpochs,
      tailLearningRate: c.tailLearningRate,
      tuneHeadLearningRate: c.tuneLearningRate,
      decayToPretrained: c.decayToPretrained,
      groupRuns: c.groupRuns ?? s.groupRuns,
    });
    const m = result.manifest;
    process.stdout.write(
      JSON.stringify({
        model: c.out,
        preset: c.preset,
        version: m.version,
        backbone: m.backbone.id,
        classes: m.labels.count,
        views: m.training.views,
        validationAccuracy: m.metrics.validationAccuracy,
        ...(m.tail ? { tunedFrom: m.tail.freezePoint } : {}),
        skipped: result.failed.length,
        seconds: { bottlenecks: +result.bottleneckSeconds.toFixed(1), head: +result.trainSeconds.toFixed(1), total: +result.totalSeconds.toFixed(1) },
      }) + '\n',
    );
  }));
}
