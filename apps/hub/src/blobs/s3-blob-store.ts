import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { assertBlobKey, sha256Of, verified, verifiedStream, type BlobStore, type StoredBlob } from './blob-store';

/** Connections to the store at once (streamed downloads each hold one). */
const MAX_CONNECTIONS = 256;

/** Where the blobs are: an S3 bucket, or any S3-compatible store (MinIO, Ceph RGW, s3rver) at `endpoint`. */
export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket (e.g. `blobs/`); a blob's key is the prefix and its sha256. */
  prefix?: string;
  region: string;
  /** `http(s)://host:port` of an S3-compatible store; unset = AWS S3 of `region`. */
  endpoint?: string;
  /** `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key` (most self-hosted stores want it). */
  forcePathStyle?: boolean;
  /** Unset = the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Blobs as objects in an S3-compatible bucket, keyed `<prefix><sha256>`: every hub replica
 * and worker that names the same bucket sees the same blobs. An object is written once
 * (a HEAD first: the same bytes are never uploaded twice) with its SHA-256 for the store
 * to check on arrival; reads are checked against the key too (a whole `get`, and a whole
 * `open` stream as it passes). Downloads stream from the store, ranges as HTTP Range requests.
 */
export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? '';
    const config: S3ClientConfig = {
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Checksums only where the API requires them: S3-compatible stores differ in the trailers they accept.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A store that stops answering fails the request (and an artifact download cut short) instead of holding it forever;
      // each streamed download holds a connection while a device reads it, so a rollout needs more than the default 50.
      requestHandler: {
        connectionTimeout: 10_000,
        socketTimeout: 120_000,
        httpAgent: { keepAlive: true, maxSockets: MAX_CONNECTIONS },
        httpsAgent: { keepAlive: true, maxSockets: MAX_CONNECTIONS },
      },
    };
    // The SDK warns once per process, over nine lines, that its releases from 2027 need Node 22: the locked version runs on Node 20.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client(config);
  }

  /** `s3://bucket/prefix`, for logs and progress lines. */
  describe(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  async put(data: Buffer): Promise<StoredBlob> {
    const sha256 = sha256Of(data);
    if (!(await this.has(sha256))) await this.putObject(sha256, data, data.length);
    return { sha256, bytes: data.length };
  }

  /**
   * Upload `body` (`bytes` long) as blob `sha256` without holding it in memory (`shelf blobs
   * migrate`). The caller vouches for the hash; the store checks it on arrival where it
   * supports `x-amz-checksum-sha256`, and `shelf blobs migrate` reads the object back.
   */
  async putStream(sha256: string, body: Readable, bytes: number): Promise<void> {
    await this.putObject(sha256, body, bytes);
  }

  async get(sha256: string): Promise<Buffer | undefined> {
    const got = await this.getObject(sha256);
    if (!got?.Body) return undefined;
    return verified(sha256, Buffer.from(await got.Body.transformToByteArray()));
  }

  async open(sha256: string, range?: { start: number; end: number }): Promise<{ stream: Readable; bytes: number } | undefined> {
    const got = await this.getObject(sha256, range);
    if (!got?.Body) return undefined;
    const body = got.Body as Readable;
    if (!range) return { stream: verifiedStream(sha256, body), bytes: Number(got.ContentLength) };
    const answered = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(got.ContentRange ?? '');
    if (!answered || Number(answered[1]) !== range.start || Number(answered[2]) < range.end) {
      body.destroy();
      throw new Error(`blob ${sha256}: asked the store for bytes ${range.start}-${range.end}, it answered Content-Range ${JSON.stringify(got.ContentRange)}`);
    }
    // Some S3-compatible stores answer more than asked (s3rver reads bytes=0-0 as the whole object): cut to the range.
    const stream = Number(answered[2]) > range.end ? firstBytes(body, range.end - range.start + 1) : body;
    return { stream, bytes: Number(answered[3]) };
  }

  async has(sha256: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(sha256) }));
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  async delete(sha256: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(sha256) }));
  }

  /** Close the client's connections. */
  close(): void {
    this.client.destroy();
  }

  private async putObject(sha256: string, body: Buffer | Readable, bytes: number): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(sha256),
        Body: body,
        ContentLength: bytes,
        ContentType: 'application/octet-stream',
        ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
      }),
    );
  }

  private async getObject(sha256: string, range?: { start: number; end: number }) {
    try {
      return await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(sha256), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }));
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  private keyOf(sha256: string): string {
    assertBlobKey(sha256);
    return `${this.prefix}${sha256}`;
  }
}

/** A 404 from the store (HeadObject answers `NotFound`, GetObject `NoSuchKey`). */
function notFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** The first `n` bytes of `source` (the rest is not read: the source is destroyed). */
function firstBytes(source: Readable, n: number): Readable {
  let left = n;
  const cut = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (left <= 0) return done();
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      this.push(part);
      if (left <= 0) {
        this.push(null);
        source.unpipe(this);
        source.destroy();
      }
      done();
    },
  });
  source.on('error', (err) => cut.destroy(err));
  return source.pipe(cut);
}

/** SHA-256 of a stream's bytes, lowercase hex (the stream is consumed). */
export async function sha256OfStream(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
