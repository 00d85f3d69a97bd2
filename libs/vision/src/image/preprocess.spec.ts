import sharp from 'sharp';
import { ImageDecodeError } from '../errors';
import { colourImage } from '../testing/fixtures';
import { drawDistortion, IDENTITY_DRAW, seededRng, type DistortionDraw } from './distort';
import { decodeRgb, preprocessImage, renderInput } from './preprocess';

/** A 64×64 image: left half red, right half blue, with a green square top-left. */
async function halves(): Promise<Buffer> {
  const w = 64;
  const px = Buffer.alloc(w * w * 3);
  for (let y = 0; y < w; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      if (x < 12 && y < 12) px.set([0, 255, 0], i);
      else px.set(x < w / 2 ? [200, 30, 30] : [30, 30, 200], i);
    }
  return sharp(px, { raw: { width: w, height: w, channels: 3 } }).png().toBuffer();
}

const at = (buf: Buffer, w: number, x: number, y: number) => Array.from(buf.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));
const mean = (b: Buffer) => b.reduce((a, v) => a + v, 0) / b.length;
const draw = (d: Partial<DistortionDraw>): DistortionDraw => ({ ...IDENTITY_DRAW, ...d });

describe(renderInput.name, () => {
  let img: Awaited<ReturnType<typeof decodeRgb>>;
  let plain: Buffer;
  beforeAll(async () => {
    img = await decodeRgb(await halves(), 'halves');
    plain = await renderInput(img, [32, 32]);
  });

  it('resizes to the input size without distortion', () => {
    expect(plain).toHaveLength(32 * 32 * 3);
    expect(at(plain, 32, 2, 2)).toEqual([0, 255, 0]);
    expect(at(plain, 32, 8, 20)[0]).toBeGreaterThan(150);
    expect(at(plain, 32, 28, 20)[2]).toBeGreaterThan(150);
  });

  it('flip mirrors the image exactly', async () => {
    const flipped = await renderInput(img, [32, 32], draw({ flip: true }));
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) expect(at(flipped, 32, x, y)).toEqual(at(plain, 32, 31 - x, y));
  });

  it('brightness multiplies pixel values by the drawn factor', async () => {
    const dim = await renderInput(img, [32, 32], draw({ brightness: 0.5 }));
    expect(mean(dim) / mean(plain)).toBeCloseTo(0.5, 1);
    for (let i = 0; i < dim.length; i += 97) expect(Math.abs((dim[i] as number) - (plain[i] as number) * 0.5)).toBeLessThanOrEqual(1);
  });

  it('crop cuts the drawn box: the bottom-right quarter holds no green and no red', async () => {
    const crop = await renderInput(img, [32, 32], draw({ box: { x: 0.5, y: 0.5, w: 0.5, h: 0.5 } }));
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) expect(at(crop, 32, x, y)[2]).toBeGreaterThan(150);
  });

  it('noise changes pixels with about the drawn standard deviation', async () => {
    const noisy = await renderInput(img, [32, 32], draw({ noiseStd: 20, noiseSeed: 5 }));
    let sq = 0;
    let n = 0;
    for (let i = 0; i < noisy.length; i++) {
      const p = plain[i] as number;
      if (p < 30 || p > 225) continue; // clipping would shrink the spread
      sq += ((noisy[i] as number) - p) ** 2;
      n++;
    }
    expect(Math.sqrt(sq / n)).toBeGreaterThan(15);
    expect(Math.sqrt(sq / n)).toBeLessThan(25);
  });

  it('blur softens the red/blue edge', async () => {
    const blurred = await renderInput(img, [32, 32], draw({ blurSigma: 2 }));
    const edge = (b: Buffer) => Math.abs((at(b, 32, 15, 20)[0] as number) - (at(b, 32, 16, 20)[0] as number));
    expect(edge(blurred)).toBeLessThan(edge(plain));
  });

  it('rotation moves pixels but keeps the size', async () => {
    const rotated = await renderInput(img, [32, 32], draw({ angle: 10 }));
    expect(rotated).toHaveLength(plain.length);
    let changed = 0;
    for (let i = 0; i < plain.length; i++) if (Math.abs((rotated[i] as number) - (plain[i] as number)) > 40) changed++;
    expect(changed).toBeGreaterThan(30);
  });

  it('draws nothing when no distortion is asked for, and within bounds when asked', () => {
    const rng = seededRng(3);
    expect(drawDistortion({}, rng)).toMatchObject({ flip: false, brightness: 1, blurSigma: 0, noiseStd: 0, angle: 0, box: { x: 0, y: 0, w: 1, h: 1 } });
    for (let i = 0; i < 50; i++) {
      const d = drawDistortion({ brightness: 20, crop: 10, scale: 20, rotate: 5 }, rng);
      expect(d.brightness).toBeGreaterThanOrEqual(0.8);
      expect(d.brightness).toBeLessThanOrEqual(1.2);
      expect(d.box.w).toBeLessThanOrEqual(1 / 1.1 + 1e-9);
      expect(d.box.w).toBeGreaterThanOrEqual(1 / (1.1 * 1.2) - 1e-9);
      expect(d.box.x + d.box.w).toBeLessThanOrEqual(1 + 1e-9);
      expect(Math.abs(d.angle)).toBeLessThanOrEqual(5);
    }
  });
});

describe(preprocessImage.name, () => {
  const spec = { size: [8, 8] as [number, number], range: [-1, 1] as [number, number] };

  it('decodes JPEG, PNG and WebP into the input range', async () => {
    for (const format of ['jpeg', 'png', 'webp'] as const) {
      const px = await preprocessImage(await colourImage([255, 0, 0], 1, format), spec);
      expect(px).toHaveLength(8 * 8 * 3);
      expect(Math.min(...px)).toBeGreaterThanOrEqual(-1);
      expect(Math.max(...px)).toBeLessThanOrEqual(1);
      expect(px[0]).toBeGreaterThan(0.7);
      expect(px[1]).toBeLessThan(-0.7);
    }
  });

  it('honours EXIF orientation', async () => {
    // A 40×20 image whose left half is green, tagged "rotate 90° clockwise" (6).
    const px = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) px.set(x < 20 ? [0, 255, 0] : [0, 0, 0], (y * 40 + x) * 3);
    const jpeg = await sharp(px, { raw: { width: 40, height: 20, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const rgb = await decodeRgb(jpeg, 'oriented');
    expect([rgb.width, rgb.height]).toEqual([20, 40]);
    expect(at(rgb.data, 20, 10, 5)[1]).toBeGreaterThan(200); // green now on top
    expect(at(rgb.data, 20, 10, 35)[1]).toBeLessThan(50);
  });

  it('names the frame in the error for corrupt bytes', async () => {
    const good = await colourImage([10, 20, 30], 2);
    const corrupt = Buffer.concat([good.subarray(0, 40), Buffer.alloc(100, 7)]);
    await expect(preprocessImage(corrupt, spec, { source: 'frame-42.jpg' })).rejects.toThrow(ImageDecodeError);
    await expect(preprocessImage(corrupt, spec, { source: 'frame-42.jpg' })).rejects.toThrow(/frame-42\.jpg/);
    await expect(preprocessImage(Buffer.from('not an image'), spec, { source: 'x' })).rejects.toThrow(ImageDecodeError);
  });
});
