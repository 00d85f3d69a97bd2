import { TrainOptionsError } from '../errors';
import { DEFAULT_TRAIN_OPTIONS } from '../head/train';
import { resolveTrainPreset, TRAIN_PRESETS } from './presets';
import { TRAIN_DEFAULTS, trainingViews } from './train-model';

describe(resolveTrainPreset.name, () => {
  it('fast is the defaults: the head trainer’s values and the built-in backbone', () => {
    const s = resolveTrainPreset('fast', {});
    expect(s).toMatchObject({ ...TRAIN_DEFAULTS, head: 'softmax', ensemble: 1, backbone: 'nsfw-mobilenet-v2' });
    expect(s.epochs).toBe(DEFAULT_TRAIN_OPTIONS.epochs);
    expect(s.learningRate).toBe(DEFAULT_TRAIN_OPTIONS.learningRate);
  });

  it('accurate is the measured recipe, and explicit values override it field by field', () => {
    const s = resolveTrainPreset('accurate', { backbone: 'models/mnv1', epochs: 5, learningRate: undefined, distortions: { crop: 5, scale: undefined } });
    expect(s).toMatchObject({
      backbone: 'models/mnv1',
      head: 'mlp',
      hidden: 256,
      dropout: 0.5,
      learningRate: 0.001,
      labelSmoothing: 0.1,
      epochs: 5,
      ensemble: 10,
      tta: 'zoom-flip',
      views: 7,
      sublabels: true,
      validationPercentage: 10,
      testingPercentage: 0,
    });
    expect(s.distortions).toEqual({ flipLeftRight: true, crop: 5, scale: 20, brightness: 20 });
    expect(TRAIN_PRESETS.accurate.settings.epochs).toBe(25);
  });

  it('accurate without a backbone says what to pass', () => {
    expect(() => resolveTrainPreset('accurate', {})).toThrow(TrainOptionsError);
    expect(() => resolveTrainPreset('accurate', {})).toThrow(/--preset accurate needs --backbone .*ImageNet/);
  });
});

describe(trainingViews.name, () => {
  it('caches exactly the views asked for: the accurate preset’s 7 = centre, zoom, zoom-flip, flip + 3 distorted', () => {
    const a = TRAIN_PRESETS.accurate.settings;
    const v = trainingViews(a.distortions, a.tta, a.views);
    expect(v.fixed.map((x) => x.key)).toEqual(['center', 'zoom', 'zoom-flip', 'flip']);
    expect(v.fixed.length + v.distorted.length).toBe(7);
    expect(trainingViews(a.distortions, a.tta, 4).distorted).toHaveLength(0);
  });

  it('refuses fewer views than the fixed ones, and extra views without a distortion', () => {
    expect(() => trainingViews({ flipLeftRight: true, crop: 10 }, 'zoom-flip', 3)).toThrow(/fewer than the 4 fixed views of these options \(center, zoom, zoom-flip, flip\)/);
    expect(() => trainingViews({}, 'none', 3)).toThrow(/needs a distortion/);
    expect(trainingViews({}, 'none').distorted).toHaveLength(0);
    expect(trainingViews({ crop: 10 }, 'none').distorted).toHaveLength(6);
  });
});
