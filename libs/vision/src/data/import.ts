import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import sharp from 'sharp';
import { DatasetError } from '../errors';
import { decodeRgb, renderInput } from '../image/preprocess';
import { drawDistortion, seededRng, type DistortionOptions } from '../image/distort';
import { readCsv, csvField, IMAGE_EXTENSIONS } from './dataset';

export interface ImportOptions {
  /** CSV of image ids / file names and labels (the seed's train.csv). */
  csv: string;
  /** Folder holding the images named in the CSV. */
  images: string;
  out: string;
  imageColumn: string;
  labelColumn: string;
  /** `link`: symlinks (fast, no copies); `copy`: copy the files. */
  mode: 'copy' | 'link';
  /** The seed's step 1: write distorted copies until each class has this many images. */
  balance?: number;
  distortions?: DistortionOptions;
  seed?: number;
}

export interface ImportResult {
  classes: Record<string, number>;
  imported: number;
  augmented: number;
  missing: string[];
}

const SAFE = /[^A-Za-z0-9_.-]+/g;

/**
 * The seed's preprocessing step: turn a CSV of image ids and labels plus an image
 * folder into the class-folder layout (`out/<label>/<file>`). With `balance`, classes
 * with fewer images get distorted copies named `<name>_nohash_aug<k>.jpg`, which the
 * hash split keeps in the same set as their original.
 */
export async function importDataset(opts: ImportOptions): Promise<ImportResult> {
  const { header, rows } = await readCsv(opts.csv);
  const iImg = header.indexOf(opts.imageColumn.toLowerCase());
  const iLab = header.indexOf(opts.labelColumn.toLowerCase());
  if (iImg < 0 || iLab < 0) throw new DatasetError(`${opts.csv}: columns ${opts.imageColumn} and ${opts.labelColumn} expected (header: ${header.join(',')})`);
  const base = opts.images;
  const byClass = new Map<string, string[]>();
  const missing: string[] = [];
  for (const r of rows) {
    const id = r[iImg] ?? '';
    const label = (r[iLab] ?? '').replace(SAFE, '_');
    if (!id || !label) continue;
    const file = findImage(isAbsolute(id) ? id : join(base, id));
    if (!file) {
      missing.push(id);
      continue;
    }
    const dir = join(opts.out, label);
    await mkdir(dir, { recursive: true });
    const target = join(dir, basename(file));
    if (!existsSync(target)) {
      if (opts.mode === 'link') await symlink(resolve(file), target);
      else await copyFile(file, target);
    }
    byClass.set(label, [...(byClass.get(label) ?? []), target]);
  }
  let augmented = 0;
  if (opts.balance) {
    const distort: DistortionOptions = opts.distortions ?? { flipLeftRight: true, crop: 10, scale: 20, brightness: 20, rotate: 10 };
    for (const [label, files] of byClass) {
      const rng = seededRng((opts.seed ?? 1) ^ hashString(label));
      for (let k = 0; files.length + k < opts.balance; k++) {
        const src = files[k % files.length] as string;
        const name = `${basename(src, extname(src))}_nohash_aug${Math.floor(k / files.length)}.jpg`;
        const target = join(opts.out, label, name);
        if (!existsSync(target)) {
          const img = await decodeRgb(src);
          const side = Math.min(img.width, img.height);
          const raw = await renderInput(img, [side, side], drawDistortion(distort, rng));
          await writeFile(target, await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
        }
        augmented++;
      }
    }
  }
  const classes = Object.fromEntries([...byClass].map(([l, f]) => [l, f.length]).sort());
  return { classes, imported: [...byClass.values()].reduce((n, f) => n + f.length, 0), augmented, missing };
}

function findImage(pathOrId: string): string | undefined {
  if (existsSync(pathOrId) && extname(pathOrId)) return pathOrId;
  for (const ext of IMAGE_EXTENSIONS) if (existsSync(pathOrId + ext)) return pathOrId + ext;
  return existsSync(pathOrId) ? pathOrId : undefined;
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * The Grocery Store dataset's lists (`path, fine_id, coarse_id`) as CSVs
 * `image,label,sublabel` with absolute paths (label: coarse or fine class name; sublabel:
 * the fine class, for `shelf train --sublabels`).
 */
export async function groceryStoreCsv(root: string, list: string, level: 'coarse' | 'fine', out: string): Promise<number> {
  const classes = (await readFile(join(root, 'classes.csv'), 'utf8')).trim().split('\n').slice(1);
  const fine = new Map<string, string>();
  const coarse = new Map<string, string>();
  for (const line of classes) {
    const [fname, fid, cname, cid] = line.split(',').map((s) => s.trim());
    if (fid !== undefined && fname) fine.set(fid, fname);
    if (cid !== undefined && cname) coarse.set(cid, cname);
  }
  const lines = (await readFile(join(root, list), 'utf8')).trim().split('\n');
  const rows = lines.map((l) => {
    const [path, fid, cid] = l.split(',').map((s) => s.trim());
    const label = level === 'fine' ? fine.get(fid ?? '') : coarse.get(cid ?? '');
    const sublabel = fine.get(fid ?? '');
    if (!path || !label || !sublabel) throw new DatasetError(`${list}: bad line ${l}`);
    return `${csvField(resolve(root, path))},${csvField(label)},${csvField(sublabel)}`;
  });
  await mkdir(dirname(resolve(out)), { recursive: true });
  await writeFile(out, ['image,label,sublabel', ...rows].join('\n') + '\n');
  return rows.length;
}
