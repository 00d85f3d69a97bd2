import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { silentLogger, type Logger } from '@shelfsight/common';
import type { ModelRejectReason, RolloutManifest } from '@shelfsight/contracts';
import { syncDir } from '../storage/atomic-file';

export type DownloadFailure = Extract<ModelRejectReason, 'download_failed' | 'length_mismatch' | 'hash_mismatch'>;

export class ArtifactDownloadError extends Error {
  override name = 'ArtifactDownloadError';
  constructor(
    readonly reason: DownloadFailure,
    message: string,
    /** The HTTP status that ended the download, when the server refused it. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface DownloadOptions {
  url: string;
  /** What the manifest signed: nothing beyond `length` bytes is ever read. */
  expected: RolloutManifest['artifact'];
  /** Final file; `<dest>.part` holds the bytes so far (kept between attempts and restarts, to resume). */
  dest: string;
  /** Request headers (the device credential). */
  headers?: Record<string, string>;
  /** Attempts in all (default 5); between them a backoff doubling from `backoffMs` (default 500) up to 30 s. */
  attempts?: number;
  backoffMs?: number;
  /** An attempt receiving nothing for this long is abandoned and retried (default 30 s). */
  idleTimeoutMs?: number;
  onProgress?: (bytes: number, total: number) => void;
  logger?: Logger;
  sleep?: (ms: number) => Promise<void>;
}

/** A failure the next attempt cannot fix: stop retrying. */
class Final extends ArtifactDownloadError {}

/**
 * Download a head artifact over HTTP: resumes with `Range` after a dropped connection
 * (or restarts from zero when the server ignores ranges), retries with backoff, aborts a
 * response the moment it goes past the signed length, and verifies the sha256 of the whole
 * file before it is renamed into place. Resolves with `dest`; rejects with an
 * {@link ArtifactDownloadError} whose `reason` goes into the rollout status.
 */
export async function downloadArtifact(opts: DownloadOptions): Promise<string> {
  const { expected, dest } = opts;
  const part = `${dest}.part`;
  const attempts = Math.max(1, opts.attempts ?? 5);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const logger = (opts.logger ?? silentLogger).child({ part: 'artifact-download' });
  await fsp.mkdir(path.dirname(dest), { recursive: true });

  let lastError: ArtifactDownloadError | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await fetchOnce(opts, part);
      lastError = undefined;
      break;
    } catch (err) {
      if (err instanceof Final) {
        await fsp.rm(part, { force: true });
        throw new ArtifactDownloadError(err.reason, err.message, err.status);
      }
      lastError = err instanceof ArtifactDownloadError ? err : new ArtifactDownloadError('download_failed', (err as Error).message);
      const have = await sizeOf(part);
      logger.warn('artifact download attempt failed', { url: opts.url, attempt, of: attempts, have, length: expected.length, err: lastError.message });
      if (attempt < attempts) await sleep(Math.min(30_000, (opts.backoffMs ?? 500) * 2 ** (attempt - 1)));
    }
  }
  if (lastError) throw lastError;

  const digest = await sha256File(part);
  if (digest !== expected.sha256) {
    await fsp.rm(part, { force: true });
    throw new ArtifactDownloadError('hash_mismatch', `artifact sha256 ${digest} is not the signed ${expected.sha256}`);
  }
  await fsp.rename(part, dest);
  await syncDir(path.dirname(dest));
  return dest;
}

async function fetchOnce(opts: DownloadOptions, part: string): Promise<void> {
  const { length } = opts.expected;
  let offset = await sizeOf(part);
  if (offset > length) {
    await fsp.rm(part, { force: true });
    offset = 0;
  }
  if (offset === length) return;

  const controller = new AbortController();
  const idleMs = opts.idleTimeoutMs ?? 30_000;
  let idle: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  };
  touch();
  const fh = await fsp.open(part, offset > 0 ? 'r+' : 'w');
  try {
    const res = await fetch(opts.url, { headers: { ...opts.headers, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) }, signal: controller.signal });
    if (res.status === 416) {
      // The part file does not fit what the server holds: start over.
      await fh.truncate(0);
      throw new ArtifactDownloadError('download_failed', 'server refused the resume range; restarting from zero');
    }
    if (res.status === 200) {
      offset = 0;
      await fh.truncate(0);
    } else if (res.status === 206) {
      const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (Number(start) !== offset) throw new ArtifactDownloadError('download_failed', `server answered range ${res.headers.get('content-range') ?? '(none)'} for bytes=${offset}-`);
    } else {
      await res.body?.cancel().catch(() => undefined);
      const message = `GET ${opts.url}: HTTP ${res.status}`;
      // A 4xx will not change by retrying (bad credential, no such artifact); 408/429/5xx might.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new Final('download_failed', message, res.status);
      throw new ArtifactDownloadError('download_failed', message);
    }
    const announced = res.headers.get('content-length');
    if (announced !== null && offset + Number(announced) > length) {
      controller.abort();
      throw new Final('length_mismatch', `server announces ${offset + Number(announced)} bytes, the manifest signed ${length}`);
    }
    if (!res.body) throw new ArtifactDownloadError('download_failed', 'response has no body');
    let at = offset;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      touch();
      if (at + chunk.length > length) {
        controller.abort();
        throw new Final('length_mismatch', `artifact is longer than the signed ${length} bytes; stopped reading`);
      }
      await fh.write(chunk, 0, chunk.length, at);
      at += chunk.length;
      opts.onProgress?.(at, length);
    }
    await fh.sync();
    if (at < length) throw new ArtifactDownloadError('length_mismatch', `artifact ended at ${at} of the signed ${length} bytes`);
  } catch (err) {
    if (err instanceof ArtifactDownloadError) throw err;
    throw new ArtifactDownloadError('download_failed', `GET ${opts.url}: ${(err as Error).message}`);
  } finally {
    clearTimeout(idle);
    await fh.sync().catch(() => undefined);
    await fh.close();
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return 0;
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
