import { createHash } from 'node:crypto';
import { basename, dirname, extname } from 'node:path';
import { whichSet, type LabeledImage, type SplitName } from './dataset';

/**
 * Photo runs: datasets shot with a phone (Grocery Store) hold runs of near-identical
 * shots of one item, numbered one after another in a folder (`Golden-Delicious_001.jpg`,
 * `_002`, …). A split that puts shots of one run on both sides scores the memorised item,
 * not the category (the accurate recipe's random 10% scored 99.3%, unseen photos ~85%).
 * A run is approximated as a block of `runLength` consecutive numbers in one folder;
 * files without a trailing number are runs of their own.
 */
export function runKey(path: string, runLength: number): string {
  const stem = basename(path, extname(path)).replace(/_nohash_.*$/, '');
  const m = /^(.*?)(\d+)$/.exec(stem);
  if (!m || runLength <= 1) return `${dirname(path)}/${stem}`;
  return `${dirname(path)}/${m[1]}#${Math.floor(Number(m[2]) / runLength)}`;
}

/** retrain.py's hash split applied to whole runs: every shot of a run lands in the same set. */
export function whichSetByRun(path: string, runLength: number, validationPercentage: number, testingPercentage: number): SplitName {
  // whichSet hashes a file name: give it the run key as one.
  return whichSet(runKey(path, runLength).replace(/[/\\]/g, '_') + '.run', validationPercentage, testingPercentage);
}

/**
 * K folds of images, grouped by run and spread by folder: within each folder (one
 * sub-class) the runs are dealt to the folds in turn, from a folder-dependent start, so
 * every fold holds some of every class that has enough runs, and no run is split.
 * Returns each image's fold (0 … k−1).
 */
export function groupedFolds(images: LabeledImage[], k: number, runLength: number): number[] {
  if (!Number.isInteger(k) || k < 2) throw new Error(`folds must be an integer ≥ 2, got ${k}`);
  const runsByFolder = new Map<string, string[]>();
  const keys = images.map((img) => runKey(img.path, runLength));
  images.forEach((img, i) => {
    const folder = dirname(img.path);
    const list = runsByFolder.get(folder) ?? [];
    if (!list.includes(keys[i] as string)) list.push(keys[i] as string);
    runsByFolder.set(folder, list);
  });
  const foldOfRun = new Map<string, number>();
  for (const [folder, runs] of runsByFolder) {
    const start = parseInt(createHash('sha1').update(folder).digest('hex').slice(0, 8), 16) % k;
    runs.sort().forEach((r, i) => foldOfRun.set(r, (start + i) % k));
  }
  return keys.map((key) => foldOfRun.get(key) as number);
}
