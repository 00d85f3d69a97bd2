import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { DatasetError } from '../errors';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

export interface LabeledImage {
  /** Absolute path. */
  path: string;
  label: string;
  /** Finer class inside `label` (CSV column `sublabel`, or the sub-folder below a class folder). */
  sublabel?: string;
}

export interface Dataset {
  /** Where it came from (folder or CSV). */
  source: string;
  /** Sorted class names. */
  labels: string[];
  images: LabeledImage[];
}

/**
 * `--data`: a folder whose sub-folders are the classes (retrain.py layout; images may sit
 * in nested folders below a class folder), or a CSV with header `image,label` whose
 * image paths are absolute or relative to the CSV.
 */
export async function loadDataset(spec: string): Promise<Dataset> {
  const path = resolve(spec);
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new DatasetError(`dataset ${spec} does not exist`);
  }
  const ds = st.isDirectory() ? await loadFolder(path) : await loadCsv(path);
  if (ds.images.length === 0) throw new DatasetError(`dataset ${spec} has no images`);
  return ds;
}

async function loadFolder(root: string): Promise<Dataset> {
  const entries = await readdir(root, { withFileTypes: true });
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  if (classes.length === 0) throw new DatasetError(`dataset folder ${root} has no class sub-folders`);
  const images: LabeledImage[] = [];
  for (const label of classes) {
    const files = await listImages(join(root, label));
    for (const f of files) {
      const rest = f.slice(join(root, label).length + 1).split('/');
      images.push(rest.length > 1 ? { path: f, label, sublabel: rest[0] } : { path: f, label });
    }
  }
  return { source: root, labels: classes, images };
}

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listImages(p)));
    else if (IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase())) out.push(p);
  }
  return out.sort();
}

/** Minimal RFC 4180 line splitter (quotes, escaped quotes). */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

export function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export async function readCsv(path: string): Promise<{ header: string[]; rows: string[][] }> {
  const text = await readFile(path, 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  const header = splitCsvLine(lines[0] ?? '').map((h) => h.replace(/^\uFEFF/, '').toLowerCase());
  return { header, rows: lines.slice(1).map(splitCsvLine) };
}

async function loadCsv(path: string): Promise<Dataset> {
  const { header, rows } = await readCsv(path);
  const iImage = header.indexOf('image');
  const iLabel = header.indexOf('label');
  const iSub = header.indexOf('sublabel');
  if (iImage < 0 || iLabel < 0) throw new DatasetError(`${path}: expected a CSV header with columns image,label (the first line has ${header.length} field${header.length === 1 ? '' : 's'}, not those; its text is not repeated here)`);
  const base = dirname(path);
  const images: LabeledImage[] = [];
  rows.forEach((r, n) => {
    const image = r[iImage];
    const label = r[iLabel];
    if (!image || !label) throw new DatasetError(`${path}:${n + 2}: empty image or label`);
    const sublabel = iSub >= 0 ? r[iSub] : undefined;
    images.push({ path: isAbsolute(image) ? image : join(base, image), label, ...(sublabel ? { sublabel } : {}) });
  });
  return { source: path, labels: [...new Set(images.map((i) => i.label))].sort(), images };
}

export type SplitName = 'training' | 'validation' | 'testing';

const MAX_NUM_IMAGES_PER_CLASS = 2 ** 27 - 1;

/**
 * retrain.py's `which_set`: the split follows from a SHA-1 of the file name (with any
 * `_nohash_` suffix removed), so adding images never moves existing ones between sets.
 * One deviation: the extension is ignored too, so `x.png` and its augmented copies
 * `x_nohash_aug0.jpg` stay in the same set.
 */
export function whichSet(fileName: string, validationPercentage: number, testingPercentage: number): SplitName {
  const hashName = basename(fileName, extname(fileName)).replace(/_nohash_.*$/, '');
  const hex = createHash('sha1').update(hashName).digest('hex');
  const percentageHash = Number(BigInt('0x' + hex) % BigInt(MAX_NUM_IMAGES_PER_CLASS + 1)) * (100 / MAX_NUM_IMAGES_PER_CLASS);
  if (percentageHash < validationPercentage) return 'validation';
  if (percentageHash < testingPercentage + validationPercentage) return 'testing';
  return 'training';
}

export function splitDataset(
  ds: Dataset,
  validationPercentage: number,
  testingPercentage: number,
): Record<SplitName, LabeledImage[]> {
  const out: Record<SplitName, LabeledImage[]> = { training: [], validation: [], testing: [] };
  for (const img of ds.images) out[whichSet(img.path, validationPercentage, testingPercentage)].push(img);
  return out;
}

/** Images per label. */
export function countByLabel(images: LabeledImage[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of images) m.set(i.label, (m.get(i.label) ?? 0) + 1);
  return m;
}
