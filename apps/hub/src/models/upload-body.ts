import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Request } from 'express';
import { HttpStatus } from '@nestjs/common';
import { BadModelUploadError } from './models.error';

/** Media types POST /models accepts: a tar of the artifact folder, optionally gzipped. */
export const ARTIFACT_MEDIA_TYPES = ['application/x-tar', 'application/tar', 'application/gzip', 'application/x-gzip', 'application/octet-stream'];

export interface UploadLimits {
  /** Bytes of the body as sent (MODEL_UPLOAD_MAX_BYTES). */
  modelUploadMaxBytes: number;
  /** Bytes of the tar once a gzipped body is decompressed (MODEL_UPLOAD_MAX_INFLATED_BYTES). */
  modelUploadMaxInflatedBytes: number;
}

/** Why an upload was refused before the registry saw it: the `reason` of shelfsight_models_refused_total. */
export type UploadRefusal = 'upload-too-large' | 'inflated-too-large' | 'bad-gzip' | 'empty-upload';

class Refused extends BadModelUploadError {
  constructor(
    readonly reason: UploadRefusal,
    message: string,
    status: HttpStatus,
  ) {
    super(message, status);
  }
}

/**
 * The raw request body as a tar: refused past MODEL_UPLOAD_MAX_BYTES as sent (413), when
 * empty or of another type (400/415). A gzipped body is decompressed as it arrives, in
 * zlib's stream (on the thread pool, never whole on the event loop), and refused with 413
 * as soon as its output passes MODEL_UPLOAD_MAX_INFLATED_BYTES — a small body that
 * inflates to gigabytes costs the hub that limit, not the gigabytes. `refused` counts
 * each refusal by reason.
 */
export async function readArtifactBody(req: Request, limits: UploadLimits, refused: (reason: UploadRefusal) => void = () => undefined): Promise<Buffer> {
  try {
    return await read(req, limits);
  } catch (err) {
    if (err instanceof Refused) {
      refused(err.reason);
      // The rest of the body is not wanted: answer and close instead of reading it.
      if (err.getStatus() === HttpStatus.PAYLOAD_TOO_LARGE && !req.res?.headersSent) req.res?.setHeader('Connection', 'close');
    }
    throw err;
  }
}

async function read(req: Request, limits: UploadLimits): Promise<Buffer> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!ARTIFACT_MEDIA_TYPES.includes(type)) {
    throw new BadModelUploadError(`POST /models takes a tar of the artifact folder (Content-Type ${ARTIFACT_MEDIA_TYPES.slice(0, 3).join(', ')}), not ${type || 'no Content-Type'}`, HttpStatus.UNSUPPORTED_MEDIA_TYPE);
  }
  const maxBytes = limits.modelUploadMaxBytes;
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw new Refused('upload-too-large', `artifact archive of ${declared} bytes exceeds MODEL_UPLOAD_MAX_BYTES (${maxBytes})`, HttpStatus.PAYLOAD_TOO_LARGE);

  let sent = 0;
  /** The body as it arrives, refused past MODEL_UPLOAD_MAX_BYTES. */
  async function* body(): AsyncGenerator<Buffer> {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      sent += chunk.length;
      if (sent > maxBytes) throw new Refused('upload-too-large', `artifact archive exceeds MODEL_UPLOAD_MAX_BYTES (${maxBytes})`, HttpStatus.PAYLOAD_TOO_LARGE);
      yield chunk;
    }
  }

  // The first two bytes say whether it is gzip; everything else streams on from there.
  const source = body();
  const head: Buffer[] = [];
  let headBytes = 0;
  while (headBytes < 2) {
    const next = await source.next();
    if (next.done) break;
    head.push(next.value);
    headBytes += next.value.length;
  }
  if (headBytes === 0) throw new Refused('empty-upload', 'empty body: POST /models takes a tar of the artifact folder', HttpStatus.BAD_REQUEST);
  const first = Buffer.concat(head);
  async function* all(): AsyncGenerator<Buffer> {
    yield first;
    for (;;) {
      const next = await source.next();
      if (next.done) return;
      yield next.value;
    }
  }

  const gzip = first[0] === 0x1f && first[1] === 0x8b;
  const max = gzip ? limits.modelUploadMaxInflatedBytes : maxBytes;
  const chunks: Buffer[] = [];
  let kept = 0;
  const collect = async (stream: AsyncIterable<Buffer>) => {
    for await (const chunk of stream) {
      kept += chunk.length;
      if (kept > max) {
        throw new Refused('inflated-too-large', `the gzipped artifact archive decompresses to more than MODEL_UPLOAD_MAX_INFLATED_BYTES (${max}); refused after ${sent} bytes of the upload`, HttpStatus.PAYLOAD_TOO_LARGE);
      }
      chunks.push(chunk);
    }
  };
  if (!gzip) {
    await collect(all());
    return Buffer.concat(chunks);
  }
  try {
    await pipeline(all(), createGunzip(), collect);
  } catch (err) {
    if (err instanceof Refused) throw err;
    throw new Refused('bad-gzip', 'the body is gzip but does not decompress', HttpStatus.BAD_REQUEST);
  }
  const tar = Buffer.concat(chunks);
  // gzip inside gzip would be decompressed again, whole and without a limit, by the unpacker.
  if (tar[0] === 0x1f && tar[1] === 0x8b) throw new Refused('bad-gzip', 'the body is gzip inside gzip: send a tar, gzipped once at most', HttpStatus.BAD_REQUEST);
  return tar;
}
