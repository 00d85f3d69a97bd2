/**
 * A head's training rows in one compact binary blob: what `shelf train` writes beside an
 * artifact (`training-set.bin`), what a registered version keeps (model_versions.
 * training_set_sha256) and what a retraining job reads back as its base. Readable without
 * TensorFlow, so the hub can store and check it.
 *
 * Layout (little-endian):
 *   magic "SSTS" · u32 format version (1) · u32 dim · u32 rows · u32 header bytes
 *   header: UTF-8 JSON {labels, backboneId, backboneChecksum}
 *   rows × u32 label index · rows × u8 split (0 training, 1 validation) · zero padding to 4 bytes
 *   rows × dim float32 features
 */
export const TRAINING_SET_MAGIC = 'SSTS';
export const TRAINING_SET_FORMAT_VERSION = 1;
export const TRAINING_SET_FILE = 'training-set.bin';

export type RowSplit = 'training' | 'validation';

export interface TrainingSet {
  /** Label names; `label[i]` indexes into them. */
  labels: string[];
  backboneId: string;
  backboneChecksum: string;
  dim: number;
  /** rows × dim floats. */
  features: Float32Array;
  label: Uint32Array;
  /** 0 training, 1 validation. */
  split: Uint8Array;
}

export class TrainingSetFormatError extends Error {
  override name = 'TrainingSetFormatError';
}

export function trainingSetRows(set: TrainingSet): number {
  return set.label.length;
}

export function encodeTrainingSet(set: TrainingSet): Buffer {
  const rows = set.label.length;
  if (set.split.length !== rows || set.features.length !== rows * set.dim) {
    throw new TrainingSetFormatError(`inconsistent training set: ${rows} labels, ${set.split.length} splits, ${set.features.length} floats for dim ${set.dim}`);
  }
  const header = Buffer.from(JSON.stringify({ labels: set.labels, backboneId: set.backboneId, backboneChecksum: set.backboneChecksum }), 'utf8');
  const fixed = 20;
  const splitEnd = fixed + header.length + rows * 4 + rows;
  const featStart = Math.ceil(splitEnd / 4) * 4;
  const out = Buffer.alloc(featStart + rows * set.dim * 4);
  out.write(TRAINING_SET_MAGIC, 0, 'ascii');
  out.writeUInt32LE(TRAINING_SET_FORMAT_VERSION, 4);
  out.writeUInt32LE(set.dim, 8);
  out.writeUInt32LE(rows, 12);
  out.writeUInt32LE(header.length, 16);
  header.copy(out, fixed);
  let o = fixed + header.length;
  for (let i = 0; i < rows; i++, o += 4) out.writeUInt32LE(set.label[i] as number, o);
  for (let i = 0; i < rows; i++, o++) out.writeUInt8(set.split[i] as number, o);
  for (let i = 0; i < set.features.length; i++) out.writeFloatLE(set.features[i] as number, featStart + i * 4);
  return out;
}

export function decodeTrainingSet(buf: Buffer): TrainingSet {
  if (buf.length < 20 || buf.toString('ascii', 0, 4) !== TRAINING_SET_MAGIC) throw new TrainingSetFormatError('not a training set (magic "SSTS" missing)');
  const version = buf.readUInt32LE(4);
  if (version !== TRAINING_SET_FORMAT_VERSION) throw new TrainingSetFormatError(`training set format ${version} is not supported (expected ${TRAINING_SET_FORMAT_VERSION})`);
  const dim = buf.readUInt32LE(8);
  const rows = buf.readUInt32LE(12);
  const headerBytes = buf.readUInt32LE(16);
  const splitEnd = 20 + headerBytes + rows * 5;
  const featStart = Math.ceil(splitEnd / 4) * 4;
  if (buf.length !== featStart + rows * dim * 4) throw new TrainingSetFormatError(`training set is ${buf.length} bytes, expected ${featStart + rows * dim * 4} for ${rows} rows of ${dim}`);
  let header: { labels?: unknown; backboneId?: unknown; backboneChecksum?: unknown };
  try {
    header = JSON.parse(buf.toString('utf8', 20, 20 + headerBytes)) as typeof header;
  } catch {
    throw new TrainingSetFormatError('training set header is not JSON');
  }
  if (!Array.isArray(header.labels) || !header.labels.every((l) => typeof l === 'string') || typeof header.backboneId !== 'string' || typeof header.backboneChecksum !== 'string') {
    throw new TrainingSetFormatError('training set header lacks labels, backboneId or backboneChecksum');
  }
  const labels = header.labels as string[];
  const label = new Uint32Array(rows);
  const split = new Uint8Array(rows);
  let o = 20 + headerBytes;
  for (let i = 0; i < rows; i++, o += 4) {
    const l = buf.readUInt32LE(o);
    if (l >= labels.length) throw new TrainingSetFormatError(`row ${i} has label index ${l} of ${labels.length} labels`);
    label[i] = l;
  }
  for (let i = 0; i < rows; i++, o++) split[i] = buf.readUInt8(o);
  const features = new Float32Array(rows * dim);
  for (let i = 0; i < features.length; i++) features[i] = buf.readFloatLE(featStart + i * 4);
  return { labels, backboneId: header.backboneId, backboneChecksum: header.backboneChecksum, dim, features, label, split };
}

/** Float32 little-endian bytes (a sample's stored embedding) as floats. */
export function embeddingFromBytes(bytes: Uint8Array, dim: number): Float32Array {
  if (bytes.length !== dim * 4) throw new TrainingSetFormatError(`embedding is ${bytes.length} bytes, expected ${dim * 4} for dim ${dim}`);
  const out = new Float32Array(dim);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < dim; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
