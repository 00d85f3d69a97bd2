/**
 * Training rows: embeddings (bottleneck vectors) with their labels, the compact binary
 * file a head is trained from. `shelf train --training-rows` writes it into the artifact
 * folder (`training-rows.bin`), training jobs produce it, and the hub's registry keeps it
 * as a blob (a version's training set; the frozen evaluation set of a category set).
 *
 * Layout (little-endian):
 *   bytes 0..3   magic "SSTR"
 *   u32          format version (1)
 *   u32          header length H
 *   H bytes      header JSON { dim, rows, labels: string[], ids?: string[] }
 *   rows × u32   label index (into header.labels)
 *   rows × u8    split: 0 training, 1 validation, 2 testing (held out)
 *   pad to a multiple of 4
 *   rows × dim × f32  embeddings, row after row
 */
import { z } from 'zod';

export const TRAINING_ROWS_FILE = 'training-rows.bin';
const MAGIC = 'SSTR';
const FORMAT_VERSION = 1;

export const SPLITS = ['training', 'validation', 'testing'] as const;
export type Split = (typeof SPLITS)[number];

export interface TrainingRows {
  dim: number;
  /** Label names; `label[i]` indexes them. */
  labels: string[];
  label: Uint32Array;
  split: Uint8Array;
  /** rows × dim, row-major. */
  x: Float32Array;
  /** Stable row ids (e.g. `image:<path>#<view>`, `sample:<id>`), for lineage and frozen evaluation sets. */
  ids?: string[];
}

export class TrainingRowsFormatError extends Error {
  override name = 'TrainingRowsFormatError';
}

const HeaderSchema = z.object({
  dim: z.number().int().positive(),
  rows: z.number().int().min(0),
  labels: z.array(z.string().min(1)).min(1),
  ids: z.array(z.string()).optional(),
});

export function rowCount(rows: TrainingRows): number {
  return rows.label.length;
}

export function encodeTrainingRows(rows: TrainingRows): Buffer {
  const n = rows.label.length;
  if (rows.split.length !== n || rows.x.length !== n * rows.dim || (rows.ids && rows.ids.length !== n)) {
    throw new TrainingRowsFormatError(`training rows: ${n} labels, ${rows.split.length} splits, ${rows.x.length} values for dim ${rows.dim}${rows.ids ? `, ${rows.ids.length} ids` : ''}`);
  }
  const header = Buffer.from(JSON.stringify({ dim: rows.dim, rows: n, labels: rows.labels, ...(rows.ids ? { ids: rows.ids } : {}) }), 'utf8');
  const head = 12 + header.length;
  const labelsAt = head;
  const splitAt = labelsAt + 4 * n;
  const xAt = align4(splitAt + n);
  const out = Buffer.alloc(xAt + 4 * rows.x.length);
  out.write(MAGIC, 0, 'ascii');
  out.writeUInt32LE(FORMAT_VERSION, 4);
  out.writeUInt32LE(header.length, 8);
  header.copy(out, 12);
  for (let i = 0; i < n; i++) out.writeUInt32LE(rows.label[i] as number, labelsAt + 4 * i);
  Buffer.from(rows.split.buffer, rows.split.byteOffset, n).copy(out, splitAt);
  Buffer.from(rows.x.buffer, rows.x.byteOffset, rows.x.byteLength).copy(out, xAt);
  return out;
}

export function decodeTrainingRows(buf: Buffer): TrainingRows {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== MAGIC) throw new TrainingRowsFormatError('training rows: not an SSTR file');
  const version = buf.readUInt32LE(4);
  if (version !== FORMAT_VERSION) throw new TrainingRowsFormatError(`training rows: format version ${version} is not supported (knows ${FORMAT_VERSION})`);
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.length) throw new TrainingRowsFormatError('training rows: truncated header');
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString('utf8', 12, 12 + hlen));
  } catch {
    throw new TrainingRowsFormatError('training rows: header is not JSON');
  }
  const parsed = HeaderSchema.safeParse(raw);
  if (!parsed.success) throw new TrainingRowsFormatError(`training rows: header ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const { dim, rows: n, labels, ids } = parsed.data;
  if (ids && ids.length !== n) throw new TrainingRowsFormatError(`training rows: ${ids.length} ids for ${n} rows`);
  const labelsAt = 12 + hlen;
  const splitAt = labelsAt + 4 * n;
  const xAt = align4(splitAt + n);
  if (buf.length !== xAt + 4 * n * dim) throw new TrainingRowsFormatError(`training rows: ${buf.length} bytes, expected ${xAt + 4 * n * dim} for ${n} rows of dim ${dim}`);
  const label = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const l = buf.readUInt32LE(labelsAt + 4 * i);
    if (l >= labels.length) throw new TrainingRowsFormatError(`training rows: row ${i} has label index ${l}, only ${labels.length} labels`);
    label[i] = l;
  }
  const split = new Uint8Array(n);
  buf.copy(split, 0, splitAt, splitAt + n);
  if (split.some((s) => s > 2)) throw new TrainingRowsFormatError('training rows: split values must be 0, 1 or 2');
  const x = new Float32Array(n * dim);
  new Uint8Array(x.buffer).set(buf.subarray(xAt, xAt + 4 * n * dim));
  return { dim, labels, label, split, x, ...(ids ? { ids } : {}) };
}

/** The rows at `indices` (in that order), as a new set with the same labels. */
export function selectRows(rows: TrainingRows, indices: number[]): TrainingRows {
  const x = new Float32Array(indices.length * rows.dim);
  indices.forEach((r, k) => x.set(rows.x.subarray(r * rows.dim, (r + 1) * rows.dim), k * rows.dim));
  return {
    dim: rows.dim,
    labels: rows.labels,
    label: Uint32Array.from(indices.map((r) => rows.label[r] as number)),
    split: Uint8Array.from(indices.map((r) => rows.split[r] as number)),
    x,
    ...(rows.ids ? { ids: indices.map((r) => (rows.ids as string[])[r] as string) } : {}),
  };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
