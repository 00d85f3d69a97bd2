import { gaussian, seededRng, type Rng } from '@shelfsight/common';
/**
 * Random image distortions, as in retrain.py (flip, crop, scale, brightness) plus the
 * "bad frames" a shelf camera produces (blur, noise, small rotation). Every field is a
 * strength; 0 or undefined switches that distortion off.
 */
export interface DistortionOptions {
  /** Mirror left-right with probability 1/2. */
  flipLeftRight?: boolean;
  /** Percent margin cropped away around the training image (retrain.py --random_crop). */
  crop?: number;
  /** Percent by which the image may be scaled up before cropping (retrain.py --random_scale). */
  scale?: number;
  /** Percent by which brightness may go down or up (retrain.py --random_brightness). */
  brightness?: number;
  /** Maximum Gaussian blur sigma in pixels of the backbone input. */
  blur?: number;
  /** Maximum standard deviation of added Gaussian noise, in 0..255 pixel units. */
  noise?: number;
  /** Maximum rotation in degrees, either way. */
  rotate?: number;
}

/** One concrete draw of the random distortions: applying it is deterministic. */
export interface DistortionDraw {
  flip: boolean;
  /** Crop box as fractions of the (centre-cropped square) source: x, y, w, h. */
  box: { x: number; y: number; w: number; h: number };
  brightness: number; // multiplier
  blurSigma: number;
  noiseStd: number;
  noiseSeed: number;
  angle: number;
}

// The seeded generator lives in @shelfsight/common (the hub's similar index signs with it too).
export { gaussian, seededRng, type Rng };

export function hasDistortions(d: DistortionOptions | undefined): boolean {
  return !!d && !!(d.flipLeftRight || d.crop || d.scale || d.brightness || d.blur || d.noise || d.rotate);
}

export const IDENTITY_DRAW: DistortionDraw = {
  flip: false,
  box: { x: 0, y: 0, w: 1, h: 1 },
  brightness: 1,
  blurSigma: 0,
  noiseStd: 0,
  noiseSeed: 0,
  angle: 0,
};

/**
 * Draw concrete distortion parameters. Crop and scale follow retrain.py: the image is
 * scaled by (1 + crop%) × (1 + U·scale%) and a window of the input size is cut at a
 * random position, i.e. a box of 1/that fraction of the image.
 */
export function drawDistortion(opts: DistortionOptions, rng: Rng): DistortionDraw {
  const marginScale = 1 + (opts.crop ?? 0) / 100;
  const resizeScale = marginScale * (1 + rng() * ((opts.scale ?? 0) / 100));
  const side = 1 / resizeScale;
  const b = (opts.brightness ?? 0) / 100;
  return {
    flip: !!opts.flipLeftRight && rng() < 0.5,
    box: { x: rng() * (1 - side), y: rng() * (1 - side), w: side, h: side },
    brightness: b > 0 ? 1 - b + rng() * 2 * b : 1,
    blurSigma: opts.blur ? rng() * opts.blur : 0,
    noiseStd: opts.noise ? rng() * opts.noise : 0,
    noiseSeed: Math.floor(rng() * 2 ** 31),
    angle: opts.rotate ? (rng() * 2 - 1) * opts.rotate : 0,
  };
}
