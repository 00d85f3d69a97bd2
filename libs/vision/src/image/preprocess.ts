import sharp from 'sharp';
import { ImageDecodeError } from '../errors';
import { gaussian, IDENTITY_DRAW, seededRng, type DistortionDraw } from './distort';

/** What a backbone wants as input: [height, width] and the range pixel values are scaled into. */
export interface InputSpec {
  size: [number, number];
  range: [number, number];
}

export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
}

sharp.cache(false);
sharp.concurrency(1);

/** Decode JPEG / PNG / WebP (anything sharp reads), apply EXIF orientation, force 8-bit sRGB RGB. */
export async function decodeRgb(input: Buffer | string, source = typeof input === 'string' ? input : 'frame'): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(input).autoOrient().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return toThreeChannels(data, info.width, info.height, info.channels);
  } catch (err) {
    throw new ImageDecodeError(source, err);
  }
}

function toThreeChannels(data: Buffer, width: number, height: number, channels: number): RgbImage {
  if (channels === 3) return { data, width, height };
  const out = Buffer.alloc(width * height * 3);
  for (let i = 0, n = width * height; i < n; i++) {
    const base = i * channels;
    out[i * 3] = data[base] ?? 0;
    out[i * 3 + 1] = data[base + (channels > 1 ? 1 : 0)] ?? 0;
    out[i * 3 + 2] = data[base + (channels > 2 ? 2 : 0)] ?? 0;
  }
  return { data: out, width, height };
}

/**
 * Resize and centre-crop (cover) to the input size; with a distortion draw, cut the
 * drawn box instead, then flip, rotate, blur, change brightness and add noise.
 * Returns 8-bit RGB of exactly size[1] × size[0].
 */
export async function renderInput(img: RgbImage, size: [number, number], draw: DistortionDraw = IDENTITY_DRAW): Promise<Buffer> {
  const [h, w] = size;
  const raw = { raw: { width: img.width, height: img.height, channels: 3 as const } };
  // The centred box with the input's aspect ratio (what fit: cover keeps), then the drawn sub-box.
  const aspect = w / h;
  const coverW = Math.min(img.width, img.height * aspect);
  const coverH = coverW / aspect;
  const left = (img.width - coverW) / 2 + draw.box.x * coverW;
  const top = (img.height - coverH) / 2 + draw.box.y * coverH;
  const region = {
    left: clampInt(Math.round(left), 0, img.width - 1),
    top: clampInt(Math.round(top), 0, img.height - 1),
    width: 0,
    height: 0,
  };
  region.width = clampInt(Math.round(draw.box.w * coverW), 1, img.width - region.left);
  region.height = clampInt(Math.round(draw.box.h * coverH), 1, img.height - region.top);

  let pipeline = sharp(img.data, raw).extract(region).resize(w, h, { fit: 'fill' });
  if (draw.flip) pipeline = pipeline.flop();
  let out = await pipeline.raw().toBuffer();

  if (draw.angle !== 0) {
    const rotated = await sharp(out, { raw: { width: w, height: h, channels: 3 } })
      .rotate(draw.angle, { background: { r: 128, g: 128, b: 128 } })
      .raw()
      .toBuffer({ resolveWithObject: true });
    out = await sharp(rotated.data, { raw: { width: rotated.info.width, height: rotated.info.height, channels: 3 } })
      .extract({
        left: Math.floor((rotated.info.width - w) / 2),
        top: Math.floor((rotated.info.height - h) / 2),
        width: w,
        height: h,
      })
      .raw()
      .toBuffer();
  }
  if (draw.blurSigma >= 0.3) {
    out = await sharp(out, { raw: { width: w, height: h, channels: 3 } }).blur(draw.blurSigma).raw().toBuffer();
  }
  if (draw.brightness !== 1 || draw.noiseStd > 0) {
    const rng = seededRng(draw.noiseSeed);
    for (let i = 0; i < out.length; i++) {
      let v = (out[i] ?? 0) * draw.brightness;
      if (draw.noiseStd > 0) v += gaussian(rng) * draw.noiseStd;
      out[i] = clampInt(Math.round(v), 0, 255);
    }
  }
  return out;
}

/** Scale 8-bit RGB into the backbone's input range. */
export function toInputRange(rgb: Uint8Array, range: [number, number]): Float32Array {
  const [lo, hi] = range;
  const k = (hi - lo) / 255;
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = (rgb[i] ?? 0) * k + lo;
  return out;
}

/** Decode + resize/crop (+ optional distortion) + scale: one image ready for the backbone. */
export async function preprocessImage(
  input: Buffer | string,
  spec: InputSpec,
  opts: { source?: string; draw?: DistortionDraw } = {},
): Promise<Float32Array> {
  const source = opts.source ?? (typeof input === 'string' ? input : 'frame');
  const img = await decodeRgb(input, source);
  try {
    return toInputRange(await renderInput(img, spec.size, opts.draw), spec.range);
  } catch (err) {
    throw new ImageDecodeError(source, err);
  }
}

function clampInt(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
