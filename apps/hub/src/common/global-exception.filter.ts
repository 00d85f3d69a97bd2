import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger, Optional } from '@nestjs/common';
import type { Response } from 'express';
import { HubMetrics } from '../metrics/hub-metrics';

/** What body-parser (and other http-errors users) put on the errors they raise. */
interface HttpLikeError {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  expose?: unknown;
  message?: unknown;
}

/** body-parser's error types, as the label of shelfsight_http_body_refused_total. */
const BODY_REASONS: Record<string, string> = {
  'entity.too.large': 'too_large',
  'entity.parse.failed': 'malformed',
  'entity.verify.failed': 'malformed',
  'request.aborted': 'aborted',
  'request.size.invalid': 'size_mismatch',
  'stream.encoding.set': 'encoding',
  'encoding.unsupported': 'encoding',
  'charset.unsupported': 'encoding',
  'parameters.too.many': 'too_many_parameters',
};

/**
 * HTTP errors pass through with their status. Errors of the request-body parsers (too large,
 * malformed JSON, unsupported charset...) carry their own 4xx status: they become that status
 * with body-parser's short message, and are counted. Anything else unknown becomes a bare 500
 * and a log line (the client never sees internals).
 */
@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  private readonly log = new Logger('HTTP');

  constructor(@Optional() private readonly metrics?: HubMetrics) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') {
      this.log.error(`unhandled ${host.getType()} error: ${(exception as Error)?.message ?? String(exception)}`);
      return;
    }
    const res = host.switchToHttp().getResponse<Response>();
    if (exception instanceof HttpException) {
      res.status(exception.getStatus()).json(exception.getResponse());
      return;
    }
    const clientError = asClientError(exception);
    if (clientError) {
      if (res.headersSent) return; // answered already (an oversized body, see bodyLimitMiddleware)
      this.metrics?.httpBodyRefused.inc({ reason: clientError.reason });
      // The rest of an oversized body is not read: close the connection once answered.
      if (clientError.status === 413) res.setHeader('Connection', 'close');
      res.status(clientError.status).json({ statusCode: clientError.status, error: clientError.reason, message: clientError.message });
      return;
    }
    this.log.error((exception as Error)?.stack ?? String(exception));
    if (res.headersSent) return;
    res.status(500).json({ statusCode: 500, message: 'Internal server error' });
  }
}

/** A 4xx error raised by a request parser (http-errors shape), with a message safe to show. */
function asClientError(exception: unknown): { status: number; reason: string; message: string } | undefined {
  if (typeof exception !== 'object' || exception === null) return undefined;
  const e = exception as HttpLikeError;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === undefined || status < 400 || status > 499) return undefined;
  const type = typeof e.type === 'string' ? e.type : undefined;
  const reason = (type && BODY_REASONS[type]) ?? 'bad_request';
  const message = e.expose === true && typeof e.message === 'string' ? e.message : reason;
  return { status, reason, message };
}
