import type { Request } from 'express';
import { HttpStatus } from '@nestjs/common';
import { BadModelUploadError } from './models.error';

/** Media types POST /models accepts: a tar of the artifact folder, optionally gzipped. */
export const ARTIFACT_MEDIA_TYPES = ['application/x-tar', 'application/tar', 'application/gzip', 'application/x-gzip', 'application/octet-stream'];

/** The raw request body, refused past `maxBytes` (413) or when empty or of another type (400/415). */
export async function readArtifactBody(req: Request, maxBytes: number): Promise<Buffer> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!ARTIFACT_MEDIA_TYPES.includes(type)) {
    throw new BadModelUploadError(`POST /models takes a tar of the artifact folder (Content-Type ${ARTIFACT_MEDIA_TYPES.slice(0, 3).join(', ')}), not ${type || 'no Content-Type'}`, HttpStatus.UNSUPPORTED_MEDIA_TYPE);
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw new BadModelUploadError(`artifact archive of ${declared} bytes exceeds MODEL_UPLOAD_MAX_BYTES (${maxBytes})`, HttpStatus.PAYLOAD_TOO_LARGE);
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      req.destroy();
      throw new BadModelUploadError(`artifact archive exceeds MODEL_UPLOAD_MAX_BYTES (${maxBytes})`, HttpStatus.PAYLOAD_TOO_LARGE);
    }
    chunks.push(chunk);
  }
  if (bytes === 0) throw new BadModelUploadError('empty body: POST /models takes a tar of the artifact folder');
  return Buffer.concat(chunks);
}
