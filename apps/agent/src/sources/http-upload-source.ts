import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { LocationCodeSchema, SiteSchema } from '@shelfsight/contracts';
import { sendJson, type OpsServer } from '../http/ops-server';
import { frameIdOf, type FrameSink, type FrameSource } from './frame';

export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;

const UploadQuerySchema = z.object({
  location: LocationCodeSchema,
  capturedAt: z.iso.datetime({ offset: true }).optional(),
  site: SiteSchema.optional(),
  /** Optional client-side id; a retried upload with the same id is deduplicated by the hub. */
  frameId: z.string().min(1).max(128).optional(),
});

/**
 * `POST /frames?location=A-03-2-B&capturedAt=<ISO>&site=<site>` with the image bytes as
 * the body, on the agent's HTTP port. Answers 202 with the frame id once queued, 400
 * for bad metadata, 413 for an image over 20 MiB, 503 (Retry-After) while the outbox is
 * full. A queued upload follows the queue policy (newest per location wins when full).
 * Without `frameId` the id is a hash of image + location + capture time, so a retry of
 * the same upload keeps its id.
 */
export class HttpUploadSource implements FrameSource {
  readonly name = 'http';
  private sink: FrameSink | undefined;

  constructor(
    server: OpsServer,
    private readonly site: string,
  ) {
    server.route('POST', '/frames', (req, res, url) => this.handle(req, res, url));
  }

  start(sink: FrameSink): void {
    this.sink = sink;
  }

  async stop(): Promise<void> {
    this.sink = undefined;
  }

  idle(): boolean {
    return true;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const sink = this.sink;
    if (!sink) return sendJson(res, 503, { error: 'agent is not accepting frames' });
    const query = UploadQuerySchema.safeParse(Object.fromEntries(url.searchParams));
    if (!query.success) {
      const issue = query.error.issues[0];
      sink.reject(this.name, 'no_location', { detail: issue?.message });
      return sendJson(res, 400, { error: `${issue?.path.join('.') ?? 'query'}: ${issue?.message ?? 'invalid'}` });
    }
    const image = await readBody(req, MAX_UPLOAD_BYTES);
    if (image === 'too_large') return sendJson(res, 413, { error: `image larger than ${MAX_UPLOAD_BYTES} bytes` });
    if (image.length === 0) return sendJson(res, 400, { error: 'empty body: send the image bytes' });
    if (!sink.hasRoom() && sink.outboxFull?.()) {
      res.setHeader('retry-after', '5');
      return sendJson(res, 503, { error: 'outbox full: retry later' });
    }
    const capturedAt = query.data.capturedAt ?? new Date().toISOString();
    const frameId = query.data.frameId ?? frameIdOf(`upload/${query.data.location}/${capturedAt}`, image);
    sink.offer({
      frameId,
      site: query.data.site ?? this.site,
      location: query.data.location,
      capturedAt,
      image,
      source: this.name,
    });
    sendJson(res, 202, { frameId });
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      return 'too_large';
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
