import type { Backbone } from './backbones/backbone';
import { ImageDecodeError } from './errors';
import { toBatch } from './image/batch';
import type { DistortionDraw } from './image/distort';
import { decodeRgb, renderInput, toInputRange, type InputSpec, type RgbImage } from './image/preprocess';

export interface FeatureJob {
  input: Buffer | string;
  /** Name used in error reports (path or frame id). */
  source: string;
  draw?: DistortionDraw;
}

export function inputSpecOf(b: { inputSize: [number, number]; inputRange: [number, number] }): InputSpec {
  return { size: b.inputSize, range: b.inputRange };
}

/**
 * Run the backbone over images in batches, in this thread. Decoding of the next batch
 * (sharp, on libuv threads) overlaps the backbone's work on the current one. A corrupt
 * image yields an {@link ImageDecodeError} in its slot; the others go on.
 */
export async function extractFeatures(
  backbone: Backbone,
  jobs: FeatureJob[],
  opts: { batchSize?: number; onBatch?: (done: number) => void } = {},
): Promise<Array<Float32Array | ImageDecodeError>> {
  const spec = inputSpecOf(backbone);
  const batchSize = Math.max(1, opts.batchSize ?? 8);
  const out: Array<Float32Array | ImageDecodeError> = new Array(jobs.length);
  // Several views of one image usually follow each other: decode it once.
  let decoded = new Map<string, Promise<RgbImage>>();
  const decode = (j: FeatureJob): Promise<RgbImage> => {
    if (typeof j.input !== 'string') return decodeRgb(j.input, j.source);
    let p = decoded.get(j.input);
    if (!p) {
      p = decodeRgb(j.input, j.source);
      decoded.set(j.input, p);
    }
    return p;
  };
  const prepare = (start: number) => {
    const part = jobs.slice(start, start + batchSize);
    const keep = new Map<string, Promise<RgbImage>>();
    const last = part[part.length - 1];
    const result = Promise.all(
      part.map(async (j) => {
        try {
          const img = await decode(j);
          return toInputRange(await renderInput(img, spec.size, j.draw), spec.range);
        } catch (err) {
          return err instanceof ImageDecodeError ? err : new ImageDecodeError(j.source, err);
        }
      }),
    );
    if (last && typeof last.input === 'string') {
      const p = decoded.get(last.input);
      if (p) keep.set(last.input, p);
    }
    decoded = keep;
    return result;
  };
  let next = jobs.length > 0 ? prepare(0) : undefined;
  for (let start = 0; start < jobs.length; start += batchSize) {
    const prepared = await (next as ReturnType<typeof prepare>);
    next = start + batchSize < jobs.length ? prepare(start + batchSize) : undefined;
    const okIdx: number[] = [];
    const okImgs: Float32Array[] = [];
    prepared.forEach((p, i) => {
      if (p instanceof ImageDecodeError) out[start + i] = p;
      else {
        okIdx.push(start + i);
        okImgs.push(p);
      }
    });
    if (okImgs.length > 0) {
      const batch = toBatch(okImgs, spec);
      const feats = backbone.extract(batch);
      const data = (await feats.data()) as Float32Array;
      batch.dispose();
      feats.dispose();
      const d = data.length / okImgs.length;
      okIdx.forEach((idx, k) => (out[idx] = data.slice(k * d, (k + 1) * d)));
    }
    opts.onBatch?.(Math.min(start + batchSize, jobs.length));
  }
  return out;
}
