import sharp from 'sharp';
import { decodeRgb, renderInput } from '../image/preprocess';
import { CENTER_VIEW, FLIP_VIEW, TTA_MODES, ttaViews, ZOOM_FLIP_VIEW, ZOOM_VIEW } from './views';

/** A 100×100 photo: white, with a red frame 6 px wide (inside the zoom's 7.5 % margin). */
async function framedPhoto(): Promise<Buffer> {
  const red = await sharp({ create: { width: 100, height: 100, channels: 3, background: { r: 200, g: 0, b: 0 } } }).png().toBuffer();
  const white = await sharp({ create: { width: 88, height: 88, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toBuffer();
  return sharp(red).composite([{ input: white, left: 6, top: 6 }]).png().toBuffer();
}

/** Share of clearly red pixels in a rendered input. */
function redShare(rgb: Buffer): number {
  let red = 0;
  for (let i = 0; i < rgb.length; i += 3) if ((rgb[i] as number) > 150 && (rgb[i + 1] as number) < 80) red++;
  return red / (rgb.length / 3);
}

describe(ttaViews.name, () => {
  it('lists the views of every mode, one backbone pass each', () => {
    expect(Object.fromEntries(TTA_MODES.map((m) => [m, ttaViews(m).map((v) => v.key)]))).toEqual({
      none: ['center'],
      flip: ['center', 'flip'],
      'flip-zoom': ['center', 'flip', 'zoom', 'zoom-flip'],
      zoom: ['zoom'],
      'zoom-flip': ['zoom', 'zoom-flip'],
    });
  });

  it('zoom crops the frame away (flipped or not); the centre view and its mirror keep it', async () => {
    const img = await decodeRgb(await framedPhoto());
    const center = await renderInput(img, [50, 50], CENTER_VIEW.draw(''));
    const zoom = await renderInput(img, [50, 50], ZOOM_VIEW.draw(''));
    expect(redShare(center)).toBeGreaterThan(0.15);
    expect(redShare(zoom)).toBeLessThan(0.02);
    expect(redShare(await renderInput(img, [50, 50], ZOOM_FLIP_VIEW.draw('')))).toBeLessThan(0.02);
    expect(redShare(await renderInput(img, [50, 50], FLIP_VIEW.draw('')))).toBeCloseTo(redShare(center), 2);
  });
});
