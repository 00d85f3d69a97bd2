import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';

/** Injection token of the hub's blob store (thumbnails, model artifacts, training sets). */
export const BLOB_STORE = Symbol('BLOB_STORE');

export interface StoredBlob {
  /** Content address: SHA-256 of the bytes, lowercase hex. */
  sha256: string;
  bytes: number;
}

/**
 * Content-addressed storage for the hub's large immutable objects: files under DATA_DIR
 * (`BLOB_STORE=fs`, one machine) or an S3-compatible bucket (`BLOB_STORE=s3`, shared by
 * hub replicas and workers anywhere). Keys are content hashes, objects never change once
 * written, and writing the same bytes twice stores them once.
 */
export interface BlobStore {
  put(data: Buffer): Promise<StoredBlob>;
  /** The whole object, checked against its key; undefined when absent, {@link BlobIntegrityError} when the bytes do not hash to it. */
  get(sha256: string): Promise<Buffer | undefined>;
  /**
   * A stream of the object, for HTTP responses; undefined when absent. With `range`, only
   * bytes `start..end` (inclusive, within the object) are streamed; `bytes` is still the object's size.
   * A whole object's stream is hashed as it passes and ends in an {@link BlobIntegrityError} if it does not match its key.
   */
  open(sha256: string, range?: { start: number; end: number }): Promise<{ stream: Readable; bytes: number } | undefined>;
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

/** Stored bytes that do not hash to their key (a corrupted or tampered object). */
export class BlobIntegrityError extends Error {
  override name = 'BlobIntegrityError';
  constructor(key: string, actual: string) {
    super(`blob ${key} is corrupt: its bytes hash to ${actual}`);
  }
}

/** Throws {@link InvalidBlobKeyError} unless `sha256` is lowercase sha256 hex. */
export function assertBlobKey(sha256: string): void {
  if (!SHA256_HEX.test(sha256)) throw new InvalidBlobKeyError(sha256);
}

export function sha256Of(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `data` itself when it hashes to `sha256`; else {@link BlobIntegrityError}. */
export function verified(sha256: string, data: Buffer): Buffer {
  const actual = sha256Of(data);
  if (actual !== sha256) throw new BlobIntegrityError(sha256, actual);
  return data;
}

/** `source` passed through a hash: the stream ends in a {@link BlobIntegrityError} if the whole does not hash to `sha256`. */
export function verifiedStream(sha256: string, source: Readable): Readable {
  const hash = createHash('sha256');
  const check = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const actual = hash.digest('hex');
      done(actual === sha256 ? null : new BlobIntegrityError(sha256, actual));
    },
  });
  source.on('error', (err) => check.destroy(err));
  check.on('close', () => source.destroy());
  return source.pipe(check);
}

/**
 * Blobs as files under `root/<first 2 hex>/<sha256>`. A write goes to a temporary file
 * beside the target, is fsynced, then renamed into place, so a reader never sees half an
 * object and a crash leaves at worst a stray temporary file.
 */
export class FileBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  async put(data: Buffer): Promise<StoredBlob> {
    const sha256 = sha256Of(data);
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
      return verified(sha256, await readFile(this.pathOf(sha256)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async open(sha256: string, range?: { start: number; end: number }): Promise<{ stream: Readable; bytes: number } | undefined> {
    const path = this.pathOf(sha256);
    try {
      const s = await stat(path);
      const stream = range ? createReadStream(path, { start: range.start, end: range.end }) : verifiedStream(sha256, createReadStream(path));
      return { stream, bytes: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async has(sha256: string): Promise<boolean> {
    return exists(this.pathOf(sha256));
  }

  async delete(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }

  /** Every stored blob's key, folder by folder (temporary files and strays skipped). */
  async *keys(): AsyncGenerator<string> {
    let dirs: string[];
    try {
      dirs = (await readdir(this.root)).filter((d) => /^[0-9a-f]{2}$/.test(d)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const d of dirs) {
      for (const name of (await readdir(join(this.root, d))).sort()) if (SHA256_HEX.test(name) && name.startsWith(d)) yield name;
    }
  }

  /** Where a blob's file is (for `shelf blobs migrate`). */
  pathOf(sha256: string): string {
    assertBlobKey(sha256);
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
