import { DEFAULT_BACKBONE } from '../backbones/builtin';
import { TrainOptionsError } from '../errors';
import { DEFAULT_TRAIN_OPTIONS } from '../head/train';
import type { TtaMode } from '../data/views';
import type { FeatureNorm, HeadType } from '../head/head';
import type { DistortionOptions } from '../image/distort';

/** Every tuning knob of `shelf train` / `trainModel` a preset sets (the same fields of `TrainModelOptions`). */
export interface TrainSettings {
  validationPercentage: number;
  testingPercentage: number;
  distortions: DistortionOptions;
  /** Cached views per training image in all (see `TrainModelOptions.views`). */
  views?: number;
  tta: TtaMode;
  sublabels: boolean;
  head: HeadType;
  hidden: number;
  normalize: FeatureNorm;
  learningRate: number;
  optimizer: 'adam' | 'sgd';
  epochs: number;
  batchSize: number;
  patience: number;
  labelSmoothing: number;
  weightDecay: number;
  dropout: number;
  seed: number;
  ensemble: number;
  /** Fine-tune the backbone after this freeze point with the head (`--tune-from`); absent: head only. */
  tuneFrom?: string;
  tuneEpochs?: number;
  /** Split by photo runs of this many shots (`--group-runs`); absent: by file. */
  groupRuns?: number;
}

export interface TrainPreset {
  description: string;
  settings: TrainSettings;
  /** The backbone used when none is given; absent: `--backbone` is required and `backboneHint` says what to pass. */
  backbone?: string;
  backboneHint?: string;
  /** Measured training time from nothing on the 2-core development machine (see BENCHMARKS.md). */
  time: string;
}

const h = DEFAULT_TRAIN_OPTIONS;

/**
 * `shelf train --preset …`: `fast` is the plain retrain.py head (the defaults), `accurate`
 * the best measured recipe on the Grocery Store dataset (BENCHMARKS.md: 86.5% on val.txt
 * with the reference MobileNet V1 0.5 backbone). Explicit options override a preset's values.
 */
export const TRAIN_PRESETS = {
  fast: {
    description: 'softmax head on the centre crop (retrain.py), seconds once bottlenecks are cached',
    settings: {
      validationPercentage: 10,
      testingPercentage: 10,
      distortions: {},
      tta: 'none',
      sublabels: false,
      head: h.head.type,
      hidden: 512,
      normalize: h.head.normalize,
      learningRate: h.learningRate,
      optimizer: h.optimizer,
      epochs: h.epochs ?? 40,
      batchSize: h.batchSize,
      patience: h.patience,
      labelSmoothing: h.labelSmoothing,
      weightDecay: h.weightDecay,
      dropout: h.dropout,
      seed: h.seed,
      ensemble: 1,
    },
    backbone: DEFAULT_BACKBONE,
    time: '≈ 2 min from nothing (2640 photos, 1 view each), 15-30 s with cached bottlenecks',
  },
  accurate: {
    description:
      'ten MLP heads on fine sub-labels, seven cached views per photo (centre, zoom, zoom mirror, mirror + 3 distorted), zoom-flip TTA; val split 10%, no testing split',
    settings: {
      validationPercentage: 10,
      testingPercentage: 0,
      distortions: { flipLeftRight: true, crop: 10, scale: 20, brightness: 20 },
      views: 7,
      tta: 'zoom-flip',
      sublabels: true,
      head: 'mlp',
      hidden: 256,
      normalize: 'l2',
      learningRate: 0.001,
      optimizer: 'adam',
      epochs: 25,
      batchSize: 100,
      patience: 0,
      labelSmoothing: 0.1,
      weightDecay: 0,
      dropout: 0.5,
      seed: 1,
      ensemble: 10,
    },
    backboneHint:
      'an ImageNet feature-vector backbone: a folder with backbone.json (the recipe was measured with MobileNet V1 0.5 224, e.g. --backbone models/mobilenet_v1_050_224) or the catalogue name imagenet-mobilenet-v1-050-224 (downloaded on first use); the built-in nsfw backbones are weak for groceries',
    time: 'see BENCHMARKS.md (bottlenecks of 7 views per photo, then ten heads trained as batched models on all cores)',
  },
} satisfies Record<string, TrainPreset>;

export type TrainPresetName = keyof typeof TRAIN_PRESETS;
export const TRAIN_PRESET_NAMES = Object.keys(TRAIN_PRESETS) as TrainPresetName[];

/** Explicitly given values (undefined: not given) on top of a preset's; distortions merge field by field. */
export type TrainOverrides = { [K in keyof TrainSettings]?: TrainSettings[K] | undefined };

/** A preset's settings with the explicitly given options on top, and the backbone to use. */
export function resolveTrainPreset(
  name: TrainPresetName,
  explicit: TrainOverrides & { backbone?: string },
): TrainSettings & { backbone: string } {
  const preset: TrainPreset = TRAIN_PRESETS[name];
  if (!preset) throw new TrainOptionsError(`unknown preset ${JSON.stringify(name)} (known: ${TRAIN_PRESET_NAMES.join(', ')})`);
  const given = Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined)) as TrainOverrides & { backbone?: string };
  const distortions = {
    ...preset.settings.distortions,
    ...Object.fromEntries(Object.entries(explicit.distortions ?? {}).filter(([, v]) => v !== undefined)),
  };
  const backbone = given.backbone ?? preset.backbone;
  if (!backbone) throw new TrainOptionsError(`--preset ${name} needs --backbone (SHELF_BACKBONE): ${preset.backboneHint ?? 'a backbone'}`);
  return { ...preset.settings, ...given, distortions, backbone };
}
