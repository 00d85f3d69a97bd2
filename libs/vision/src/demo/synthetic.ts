import sharp from 'sharp';
import { gaussian, seededRng, type Rng } from '../image/distort';

/** The product categories of the synthetic demo store. */
export const DEMO_CATEGORIES = ['apples', 'bananas', 'juice', 'milk'] as const;
export type DemoCategory = (typeof DEMO_CATEGORIES)[number];

const SIZE = 256;

function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng() * (hi - lo);
}
function hsl(h: number, s: number, l: number): string {
  return `hsl(${h.toFixed(0)},${s.toFixed(0)}%,${l.toFixed(0)}%)`;
}

function milk(rng: Rng, x: number, base: number, w: number): string {
  const h = w * between(rng, 1.5, 1.8);
  const top = base - h;
  const band = hsl(between(rng, 200, 230), between(rng, 50, 80), between(rng, 35, 55));
  const white = hsl(between(rng, 30, 60), between(rng, 0, 15), between(rng, 90, 97));
  return (
    `<polygon points="${x},${top} ${x + w / 2},${top - w * 0.35} ${x + w},${top}" fill="${white}" stroke="#bbb" stroke-width="1"/>` +
    `<rect x="${x}" y="${top}" width="${w}" height="${h}" fill="${white}" stroke="#bbb" stroke-width="1"/>` +
    `<rect x="${x}" y="${top + h * 0.45}" width="${w}" height="${h * 0.18}" fill="${band}"/>` +
    `<rect x="${x + w * 0.2}" y="${top + h * 0.15}" width="${w * 0.6}" height="${h * 0.08}" fill="${band}" opacity="0.7"/>`
  );
}

function juice(rng: Rng, x: number, base: number, w: number): string {
  const h = w * between(rng, 1.4, 1.7);
  const top = base - h;
  const orange = hsl(between(rng, 24, 36), between(rng, 85, 100), between(rng, 48, 58));
  const dark = hsl(between(rng, 15, 25), 90, between(rng, 35, 42));
  return (
    `<rect x="${x}" y="${top}" width="${w}" height="${h}" rx="${w * 0.06}" fill="${orange}"/>` +
    `<rect x="${x + w * 0.05}" y="${top}" width="${w * 0.9}" height="${h * 0.12}" fill="${dark}"/>` +
    `<circle cx="${x + w / 2}" cy="${top + h * 0.5}" r="${w * 0.28}" fill="${hsl(35, 100, 62)}" stroke="${dark}" stroke-width="2"/>` +
    `<ellipse cx="${x + w * 0.62}" cy="${top + h * 0.28}" rx="${w * 0.14}" ry="${w * 0.07}" fill="${hsl(110, 60, 38)}"/>`
  );
}

function apples(rng: Rng, x: number, base: number, w: number): string {
  let s = '';
  const n = 2 + Math.floor(rng() * 3);
  const r = w / 2.6;
  for (let i = 0; i < n; i++) {
    const cx = x + r + (i % 3) * r * 1.3 + between(rng, -3, 3);
    const cy = base - r - Math.floor(i / 3) * r * 1.4;
    const red = hsl(between(rng, 350, 368) % 360, between(rng, 70, 90), between(rng, 35, 48));
    s +=
      `<circle cx="${cx}" cy="${cy}" r="${r * between(rng, 0.85, 1.05)}" fill="${red}"/>` +
      `<ellipse cx="${cx - r * 0.35}" cy="${cy - r * 0.35}" rx="${r * 0.22}" ry="${r * 0.14}" fill="#fff" opacity="0.45"/>` +
      `<rect x="${cx - 1.5}" y="${cy - r - 6}" width="3" height="8" fill="#5a3a1a"/>`;
  }
  return s;
}

function bananas(rng: Rng, x: number, base: number, w: number): string {
  let s = '';
  const n = 3 + Math.floor(rng() * 3);
  const yellow = hsl(between(rng, 48, 56), between(rng, 85, 100), between(rng, 52, 62));
  for (let i = 0; i < n; i++) {
    const dx = x + i * w * 0.12;
    const y0 = base - w * 0.15 - i * 4;
    const len = w * between(rng, 1.2, 1.6);
    s +=
      `<path d="M ${dx} ${y0} Q ${dx + len / 2} ${y0 + w * 0.45} ${dx + len} ${y0 - w * 0.35} ` +
      `Q ${dx + len / 2} ${y0 + w * 0.2} ${dx} ${y0} Z" fill="${yellow}" stroke="${hsl(45, 70, 35)}" stroke-width="1.5"/>` +
      `<circle cx="${dx + len}" cy="${y0 - w * 0.35}" r="3" fill="#3b2a12"/>`;
  }
  return s;
}

const DRAW: Record<DemoCategory, (rng: Rng, x: number, base: number, w: number) => string> = { milk, juice, apples, bananas };

/** SVG of one shelf bay holding one category, with random layout, scale and lighting. */
export function shelfSvg(category: DemoCategory, seed: number): string {
  const rng = seededRng(seed);
  const wall = hsl(between(rng, 0, 360), between(rng, 5, 30), between(rng, 55, 85));
  const plank = hsl(between(rng, 20, 40), between(rng, 10, 40), between(rng, 25, 50));
  const shelfY = between(rng, 0.68, 0.85) * SIZE;
  const scale = between(rng, 0.7, 1.25);
  const w = 48 * scale;
  let products = '';
  const count = category === 'milk' || category === 'juice' ? 2 + Math.floor(rng() * 3) : 1 + Math.floor(rng() * 2);
  const step = category === 'milk' || category === 'juice' ? w * 1.15 : w * 2.2;
  let x = between(rng, -10, 40);
  for (let i = 0; i < count && x < SIZE - 10; i++, x += step * between(rng, 1, 1.2)) products += DRAW[category](rng, x, shelfY, w);
  const light = rng() < 0.5 ? `rgba(0,0,0,${between(rng, 0, 0.35).toFixed(2)})` : `rgba(255,255,255,${between(rng, 0, 0.2).toFixed(2)})`;
  const gx = between(rng, 0, 1).toFixed(2);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}">` +
    `<defs><filter id="n"><feTurbulence type="fractalNoise" baseFrequency="${between(rng, 0.4, 0.9).toFixed(2)}" numOctaves="2" seed="${Math.floor(rng() * 1000)}"/>` +
    `<feColorMatrix type="saturate" values="0"/><feComponentTransfer><feFuncA type="linear" slope="0.25"/></feComponentTransfer></filter>` +
    `<radialGradient id="g" cx="${gx}" cy="0.2" r="0.9"><stop offset="0" stop-color="#fff" stop-opacity="0.25"/><stop offset="1" stop-color="#000" stop-opacity="0.25"/></radialGradient></defs>` +
    `<rect width="${SIZE}" height="${SIZE}" fill="${wall}"/>` +
    `<rect y="${shelfY}" width="${SIZE}" height="${SIZE - shelfY}" fill="${plank}"/>` +
    `<rect y="${shelfY - 4}" width="${SIZE}" height="8" fill="${hsl(0, 0, between(rng, 60, 80))}"/>` +
    `<rect y="0" width="${SIZE}" height="${between(rng, 6, 18)}" fill="${plank}"/>` +
    products +
    `<rect width="${SIZE}" height="${SIZE}" fill="url(#g)"/>` +
    `<rect width="${SIZE}" height="${SIZE}" fill="${light}"/>` +
    `<rect width="${SIZE}" height="${SIZE}" filter="url(#n)"/>` +
    `</svg>`
  );
}

/** A synthetic shelf photo as JPEG bytes. */
export async function renderShelfPhoto(category: DemoCategory, seed: number): Promise<Buffer> {
  const rng = seededRng(seed ^ 0x5bd1e995);
  return sharp(Buffer.from(shelfSvg(category, seed)))
    .modulate({ brightness: 1 + gaussian(rng) * 0.08, saturation: 1 + gaussian(rng) * 0.1 })
    .jpeg({ quality: 85 })
    .toBuffer();
}
