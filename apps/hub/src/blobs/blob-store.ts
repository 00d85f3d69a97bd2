import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Injection token of the hub's blob store (thumbnails, model artifacts, training sets). */
export const BLOB_STORE = Symbol('BLOB_STORE');

export interface StoredBlob {
  /** Content address: SHA-256 of the bytes, lowercase hex. */
  sha256: string;
  bytes: number;
}

/**
 * Content-addressed storage for the hub's large immutable objects. A file
 * implementation now; the interface admits an object store (S3, GCS) later: keys are
 * content hashes, objects never change once written, and writing the same bytes twice
 * stores them once.
 */
export interface BlobStore {
  put(data: Buffer): Promise<StoredBlob>;
  get(sha256: string): Promise<Buffer | undefined>;
  /**
   * A stream of the object, for HTTP responses; undefined when absent. With `range`, only
   * bytes `start..end` (inclusive, within the object) are streamed; `bytes` is still the object's size.
   */
  open(sha256: string, range?: { start: number; end: number }): Promise<{ stream: ReadStream; bytes: number } | undefined>;
  has(sha256: string): Promise<boolean>;
  delete(sha256: string): Promise<void>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export class InvalidBlobKeyError extends Error {
  override name = 'InvalidBlobKeyError';
  constructor(key: string) {
    super(`not a blob key (sha256 hex): ${JSON.stringify(key.slice(0, 80))}`);
  }
}

/**
 * Blobs as files under `root/<first 2 hex>/<sha256>`. A write goes to a temporary file
 * beside the target, is fsynced, then renamed into place, so a reader never sees half an
 * object and a crash leaves at worst a stray temporary file.
 */
export class FileBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  async put(data: Buffer): Promise<StoredBlob> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const target = this.pathOf(sha256);
    if (await exists(target)) return { sha256, bytes: data.length };
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
    return { sha256, bytes: data.length };
  }

  async get(sha256: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(sha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async open(sha256: string, range?: { start: number; end: number }): Promise<{ stream: ReadStream; bytes: number } | undefined> {
    const path = this.pathOf(sha256);
    try {
      const s = await stat(path);
      return { stream: createReadStream(path, range ? { start: range.start, end: range.end } : {}), bytes: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  has(sha256: string): Promise<boolean> {
    return exists(this.pathOf(sha256));
  }

  async delete(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }

  private pathOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new InvalidBlobKeyError(sha256);
    return join(this.root, sha256.slice(0, 2), sha256);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
