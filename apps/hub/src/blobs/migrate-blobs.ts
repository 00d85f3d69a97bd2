import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FileBlobStore } from './blob-store';
import { sha256OfStream, type S3BlobStore } from './s3-blob-store';

export interface MigrateProgress {
  /** Blobs looked at so far, of `total`. */
  done: number;
  total: number;
  bytes: number;
  outcome: 'copied' | 'present' | 'corrupt';
}

export interface MigrateResult {
  total: number;
  /** Uploaded (absent from the bucket, or there with other bytes) and read back with the right hash. */
  copied: number;
  /** Already in the bucket with the right hash (a resumed migration). */
  present: number;
  bytesCopied: number;
  /** Local files whose bytes do not hash to their name: not copied. */
  corrupt: string[];
}

/**
 * Copy a single hub's blobs (DATA_DIR/blobs) into the bucket (`shelf blobs migrate --to s3`).
 * Resumable: a blob already in the bucket whose bytes hash to its key is skipped (one
 * with other bytes, a torn or tampered upload, is uploaded again). Verified: each local
 * file is hashed before it is sent (a corrupt one is reported and left out) and each
 * upload is read back and hashed. Streams throughout: no blob is held in memory whole.
 */
export async function migrateBlobs(source: FileBlobStore, target: S3BlobStore, onProgress: (p: MigrateProgress) => void = () => undefined): Promise<MigrateResult> {
  const keys: string[] = [];
  for await (const key of source.keys()) keys.push(key);
  const result: MigrateResult = { total: keys.length, copied: 0, present: 0, bytesCopied: 0, corrupt: [] };
  let done = 0;
  for (const key of keys) {
    const path = source.pathOf(key);
    const bytes = (await stat(path)).size;
    let outcome: MigrateProgress['outcome'];
    if (await inBucket(target, key)) {
      outcome = 'present';
      result.present += 1;
    } else if ((await sha256OfStream(createReadStream(path))) !== key) {
      outcome = 'corrupt';
      result.corrupt.push(key);
    } else {
      await target.putStream(key, createReadStream(path), bytes);
      if (!(await inBucket(target, key))) throw new Error(`blob ${key}: the bucket's copy does not hash to its key after upload`);
      outcome = 'copied';
      result.copied += 1;
      result.bytesCopied += bytes;
    }
    done += 1;
    onProgress({ done, total: keys.length, bytes, outcome });
  }
  return result;
}

/** Whether the bucket holds `key` with bytes that hash to it (read through, streamed). */
async function inBucket(target: S3BlobStore, key: string): Promise<boolean> {
  const opened = await target.open(key);
  if (!opened) return false;
  try {
    await sha256OfStream(opened.stream);
    return true;
  } catch (err) {
    if ((err as Error).name === 'BlobIntegrityError') return false;
    throw err;
  }
}
