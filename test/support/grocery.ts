import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SHELF_BIN } from '@shelfsight/cli';
import { readCsv } from '@shelfsight/vision';
import { GROCERY_DIR } from './workspace-data';

export interface GroceryRow {
  image: string;
  label: string;
}

export interface GrocerySplits {
  train: GroceryRow[];
  val: GroceryRow[];
  /** The rows of one label. */
  byLabel(rows: GroceryRow[], label: string): GroceryRow[];
  /** Coarse labels with at least `minVal` validation photos, most training photos first. */
  largest(minVal: number): string[];
}

/** The grocery photos as `shelf dataset grocery-store` lists them (image,label; coarse labels), written under `work`. */
export async function grocerySplits(work: string): Promise<GrocerySplits> {
  await promisify(execFile)(process.execPath, [SHELF_BIN, 'dataset', 'grocery-store', '--root', GROCERY_DIR, '--out', join(work, 'grocery')]);
  const read = async (f: string): Promise<GroceryRow[]> => (await readCsv(join(work, 'grocery', f))).rows.map((r) => ({ image: r[0] as string, label: r[1] as string }));
  const train = await read('train.csv');
  const val = await read('val.csv');
  const byLabel = (rows: GroceryRow[], l: string) => rows.filter((r) => r.label === l);
  const largest = (minVal: number) =>
    [...new Set(train.map((r) => r.label))]
      .map((l) => ({ l, n: byLabel(train, l).length, v: byLabel(val, l).length }))
      .filter((c) => c.v >= minVal)
      .sort((a, b) => b.n - a.n || a.l.localeCompare(b.l))
      .map((c) => c.l);
  return { train, val, byLabel, largest };
}

/** Grocery photos of a coarse category (`train/Fruit/Apple/...` → Apple), from train.txt. */
export function groceryTrainPhotos(category: string): string[] {
  return readFileSync(join(GROCERY_DIR, 'train.txt'), 'utf8')
    .split('\n')
    .map((l) => l.split(',')[0]?.trim() ?? '')
    .filter((p) => p.split('/')[2] === category)
    .map((p) => join(GROCERY_DIR, p));
}
