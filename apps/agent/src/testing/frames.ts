import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { frameIdOf } from '../sources/frame';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Bytes the stand-in classifier accepts as a PNG (signature + unique payload). */
export function fakePng(n: number): Buffer {
  return Buffer.concat([PNG_SIGNATURE, Buffer.from(`frame-${n}-${'x'.repeat(n % 7)}`)]);
}

/** Location code for frame n, spread over a small warehouse. */
export function locationOf(n: number): string {
  return `A-${String((n % 12) + 1).padStart(2, '0')}-${(n % 5) + 1}-${'ABCD'[n % 4]}`;
}

/**
 * Write `count` frames named `<location>_<n>.png` (no sidecar) into `dir`, with an
 * mtime in the past so they are settled. Returns the expected frame ids.
 */
export async function writeFrames(dir: string, count: number, start = 0): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true });
  const ids: string[] = [];
  const past = new Date(Date.now() - 60_000);
  for (let n = start; n < start + count; n++) {
    const name = `${locationOf(n)}_${String(n).padStart(5, '0')}.png`;
    const bytes = fakePng(n);
    await fsp.writeFile(path.join(dir, name), bytes);
    await fsp.utimes(path.join(dir, name), past, past);
    ids.push(frameIdOf(name, bytes));
  }
  return ids;
}
