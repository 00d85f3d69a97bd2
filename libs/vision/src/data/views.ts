import { createHash } from 'node:crypto';
import { drawDistortion, IDENTITY_DRAW, seededRng, type DistortionDraw, type DistortionOptions } from '../image/distort';

/**
 * A "view" of an image: a deterministic distortion draw, so the bottleneck of view
 * `key` of an image is always the same and can be cached. `center` is the plain
 * centre crop used for inference.
 */
export interface ImageView {
  key: string;
  draw(imageHash: string): DistortionDraw;
}

export const CENTER_VIEW: ImageView = { key: 'center', draw: () => IDENTITY_DRAW };
export const FLIP_VIEW: ImageView = { key: 'flip', draw: () => ({ ...IDENTITY_DRAW, flip: true }) };
const ZOOM = 0.85;
const zoomBox = { x: (1 - ZOOM) / 2, y: (1 - ZOOM) / 2, w: ZOOM, h: ZOOM };
export const ZOOM_VIEW: ImageView = { key: 'zoom', draw: () => ({ ...IDENTITY_DRAW, box: zoomBox }) };
export const ZOOM_FLIP_VIEW: ImageView = { key: 'zoom-flip', draw: () => ({ ...IDENTITY_DRAW, box: zoomBox, flip: true }) };

/**
 * Test-time augmentation: which fixed views to average at inference (one backbone pass
 * each). `zoom` replaces the centre crop by a tighter one (85%); on the grocery photos
 * it beats the plain crop, and `zoom-flip` (2 passes) beats `flip-zoom` (4 passes).
 */
export const TTA_MODES = ['none', 'flip', 'flip-zoom', 'zoom', 'zoom-flip'] as const;
export type TtaMode = (typeof TTA_MODES)[number];
export function ttaViews(mode: TtaMode): ImageView[] {
  if (mode === 'flip') return [CENTER_VIEW, FLIP_VIEW];
  if (mode === 'flip-zoom') return [CENTER_VIEW, FLIP_VIEW, ZOOM_VIEW, ZOOM_FLIP_VIEW];
  if (mode === 'zoom') return [ZOOM_VIEW];
  if (mode === 'zoom-flip') return [ZOOM_VIEW, ZOOM_FLIP_VIEW];
  return [CENTER_VIEW];
}

function optionsKey(opts: DistortionOptions): string {
  const canon = JSON.stringify({
    f: !!opts.flipLeftRight,
    c: opts.crop ?? 0,
    s: opts.scale ?? 0,
    b: opts.brightness ?? 0,
    bl: opts.blur ?? 0,
    n: opts.noise ?? 0,
    r: opts.rotate ?? 0,
  });
  return createHash('sha256').update(canon).digest('hex').slice(0, 10);
}

/** The i-th random distortion of an image: seeded by the image's content hash, the options and i. */
export function distortedView(opts: DistortionOptions, index: number): ImageView {
  const ok = optionsKey(opts);
  return {
    key: `aug-${ok}-${index}`,
    draw: (imageHash) => drawDistortion(opts, seededRng(parseInt(imageHash.slice(0, 8), 16) ^ Math.imul(index + 1, 0x9e3779b1) ^ parseInt(ok.slice(0, 6), 16))),
  };
}
