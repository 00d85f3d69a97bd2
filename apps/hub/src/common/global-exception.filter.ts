import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';

/**
 * HTTP errors pass through with their status; anything unknown becomes a bare 500 and a
 * log line (the client never sees internals).
 */
@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  private readonly log = new Logger('HTTP');

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
    this.log.error((exception as Error)?.stack ?? String(exception));
    res.status(500).json({ statusCode: 500, message: 'Internal server error' });
  }
}
