import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, loadConfig } from '@shelfsight/common';
import { DEFAULT_BACKBONE, TRAIN_DEFAULTS, trainModel } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom } from '../options';
import { visionAction, EXTRACTION_SPEC, extractionFrom, TTA } from './vision-options';

const pct = (def: number) => z.coerce.number().min(0).max(100).default(def);
const optPct = () => z.coerce.number().min(0).max(100).optional();

export const TRAIN_SPEC = {
  data: { env: 'SHELF_TRAIN_DATA', flag: 'data', description: 'training images: class folders or CSV image,label', schema: z.string().min(1) },
  valData: { env: 'SHELF_VAL_DATA', flag: 'val-data', description: 'validation images (default: hash split of --data)', schema: cfg.optionalString() },
  out: { env: 'SHELF_MODEL_OUT', flag: 'out', description: 'model artifact folder to write', schema: z.string().min(1) },
  backbone: { env: 'SHELF_BACKBONE', flag: 'backbone', description: 'backbone: built-in name, folder, catalogue name or URL', schema: cfg.string(DEFAULT_BACKBONE) },
  validationPercentage: { env: 'SHELF_VALIDATION_PERCENTAGE', flag: 'validation-percentage', description: 'percent of --data used for validation (hash split)', schema: pct(TRAIN_DEFAULTS.validationPercentage) },
  testingPercentage: { env: 'SHELF_TESTING_PERCENTAGE', flag: 'testing-percentage', description: 'percent of --data held out for `shelf eval` (hash split)', schema: pct(TRAIN_DEFAULTS.testingPercentage) },
  head: { env: 'SHELF_HEAD', flag: 'head', description: 'head type: softmax (retrain.py) or mlp', schema: z.enum(['softmax', 'mlp']).default(TRAIN_DEFAULTS.head) },
  hidden: { env: 'SHELF_HIDDEN', flag: 'hidden', description: 'hidden units of the mlp head', schema: cfg.int(512, 1) },
  normalize: { env: 'SHELF_NORMALIZE', flag: 'normalize', description: 'feature normalisation: l2 or none', schema: z.enum(['l2', 'none']).default(TRAIN_DEFAULTS.normalize) },
  learningRate: { env: 'SHELF_LEARNING_RATE', flag: 'learning-rate', description: 'learning rate', schema: z.coerce.number().positive().default(TRAIN_DEFAULTS.learningRate) },
  optimizer: { env: 'SHELF_OPTIMIZER', flag: 'optimizer', description: 'adam or sgd', schema: z.enum(['adam', 'sgd']).default(TRAIN_DEFAULTS.optimizer) },
  epochs: { env: 'SHELF_EPOCHS', flag: 'epochs', description: 'passes over the training rows', schema: z.coerce.number().positive().default(TRAIN_DEFAULTS.epochs) },
  steps: { env: 'SHELF_STEPS', flag: 'steps', description: 'training steps (overrides --epochs)', schema: z.coerce.number().int().positive().optional() },
  batchSize: { env: 'SHELF_BATCH_SIZE', flag: 'batch-size', description: 'training batch size', schema: cfg.int(TRAIN_DEFAULTS.batchSize, 1) },
  evalInterval: { env: 'SHELF_EVAL_INTERVAL', flag: 'eval-interval', description: 'evaluate every N steps (default: each epoch)', schema: z.coerce.number().int().positive().optional() },
  patience: { env: 'SHELF_PATIENCE', flag: 'patience', description: 'early stopping: evaluations without improvement (0: off)', schema: cfg.int(TRAIN_DEFAULTS.patience) },
  labelSmoothing: { env: 'SHELF_LABEL_SMOOTHING', flag: 'label-smoothing', description: 'label smoothing (0..1)', schema: z.coerce.number().min(0).max(1).default(TRAIN_DEFAULTS.labelSmoothing) },
  weightDecay: { env: 'SHELF_WEIGHT_DECAY', flag: 'weight-decay', description: 'L2 penalty on head weights', schema: cfg.number(TRAIN_DEFAULTS.weightDecay) },
  dropout: { env: 'SHELF_DROPOUT', flag: 'dropout', description: 'dropout on the mlp hidden layer (0..1)', schema: z.coerce.number().min(0).max(0.95).default(TRAIN_DEFAULTS.dropout) },
  seed: { env: 'SHELF_SEED', flag: 'seed', description: 'random seed', schema: cfg.int(TRAIN_DEFAULTS.seed) },
  ensemble: { env: 'SHELF_ENSEMBLE', flag: 'ensemble', description: 'train this many heads (seeds seed, seed+1, …) and average their probabilities', schema: z.coerce.number().int().min(1).max(16).default(1) },
  tta: { env: 'SHELF_TTA', flag: 'tta', description: `test-time augmentation recorded in the model: ${TTA.options.join(', ')} (one backbone pass per view: 1, 2, 4, 1, 2)`, schema: TTA.default(TRAIN_DEFAULTS.tta) },
  augViews: { env: 'SHELF_AUG_VIEWS', flag: 'aug-views', description: 'cached distorted views per training image (default 6 when a distortion is on)', schema: z.coerce.number().int().min(0).max(64).optional() },
  balance: { env: 'SHELF_BALANCE', flag: 'balance', description: 'add distorted views until every class has this many rows', schema: z.coerce.number().int().positive().optional() },
  randomCrop: { env: 'SHELF_RANDOM_CROP', flag: 'random-crop', description: 'distortion: percent margin to crop randomly', schema: optPct() },
  randomScale: { env: 'SHELF_RANDOM_SCALE', flag: 'random-scale', description: 'distortion: percent to scale up randomly', schema: optPct() },
  randomBrightness: { env: 'SHELF_RANDOM_BRIGHTNESS', flag: 'random-brightness', description: 'distortion: percent brightness change', schema: optPct() },
  randomBlur: { env: 'SHELF_RANDOM_BLUR', flag: 'random-blur', description: 'distortion: max Gaussian blur sigma (pixels)', schema: z.coerce.number().min(0).max(20).optional() },
  randomNoise: { env: 'SHELF_RANDOM_NOISE', flag: 'random-noise', description: 'distortion: max noise std-dev (0..255 units)', schema: z.coerce.number().min(0).max(128).optional() },
  flipLeftRight: { env: 'SHELF_FLIP_LEFT_RIGHT', flag: 'flip-left-right', description: 'distortion: random horizontal flips', schema: cfg.bool(false) },
  sublabels: {
    env: 'SHELF_SUBLABELS',
    flag: 'sublabels',
    description: 'train the head on sub-labels (CSV column sublabel, or sub-folders of class folders) and report labels',
    schema: cfg.bool(false),
  },
  randomRotate: { env: 'SHELF_RANDOM_ROTATE', flag: 'random-rotate', description: 'distortion: max rotation in degrees', schema: z.coerce.number().min(0).max(45).optional() },
  ...EXTRACTION_SPEC,
};

/** `shelf train`: retrain.py — train a head on a backbone's bottlenecks and write a model artifact. */
export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('Train a head on cached bottlenecks of --data and write a model artifact to --out (log: training-log.jsonl/.png inside)');
  addConfigOptions(cmd, TRAIN_SPEC);
  cmd.action(visionAction(async (opts: Record<string, unknown>) => {
    const c = loadConfig(TRAIN_SPEC, flagsFrom(TRAIN_SPEC, opts));
    const result = await trainModel({
      ...extractionFrom(c),
      backbone: c.backbone,
      data: c.data,
      valData: c.valData,
      out: c.out,
      validationPercentage: c.validationPercentage,
      testingPercentage: c.testingPercentage,
      distortions: {
        flipLeftRight: c.flipLeftRight,
        crop: c.randomCrop,
        scale: c.randomScale,
        brightness: c.randomBrightness,
        blur: c.randomBlur,
        noise: c.randomNoise,
        rotate: c.randomRotate,
      },
      augViews: c.augViews,
      balance: c.balance,
      tta: c.tta,
      sublabels: c.sublabels,
      head: c.head,
      hidden: c.hidden,
      normalize: c.normalize,
      learningRate: c.learningRate,
      optimizer: c.optimizer,
      epochs: c.epochs,
      steps: c.steps,
      batchSize: c.batchSize,
      evalInterval: c.evalInterval,
      patience: c.patience,
      labelSmoothing: c.labelSmoothing,
      weightDecay: c.weightDecay,
      dropout: c.dropout,
      seed: c.seed,
      ensemble: c.ensemble,
    });
    const m = result.manifest;
    process.stdout.write(
      JSON.stringify({
        model: c.out,
        version: m.version,
        backbone: m.backbone.id,
        classes: m.labels.count,
        validationAccuracy: m.metrics.validationAccuracy,
        skipped: result.failed.length,
        seconds: { bottlenecks: +result.bottleneckSeconds.toFixed(1), head: +result.trainSeconds.toFixed(1), total: +result.totalSeconds.toFixed(1) },
      }) + '\n',
    );
  }));
}
