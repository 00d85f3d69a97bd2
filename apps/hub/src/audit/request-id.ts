import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

export const REQUEST_ID_HEADER = 'x-request-id';

export type RequestWithId = Request & { id?: unknown };

/**
 * Every request gets an id, on `req.id` as pino-http keeps it: an incoming X-Request-Id
 * (a proxy's, up to 100 safe characters) or a new UUID; answered in X-Request-Id. The
 * audit log records it, so an entry and the log lines of its request can be matched. A
 * logger middleware that set `req.id` earlier wins.
 */
export function requestIdMiddleware(req: RequestWithId, res: Response, next: NextFunction): void {
  if (req.id === undefined || req.id === null) {
    const incoming = req.headers[REQUEST_ID_HEADER];
    const value = Array.isArray(incoming) ? incoming[0] : incoming;
    req.id = value && /^[\w.:@/-]{1,100}$/.test(value) ? value : randomUUID();
  }
  if (!res.hasHeader('X-Request-Id')) res.setHeader('X-Request-Id', String(req.id));
  next();
}

export function requestIdOf(req: RequestWithId): string | null {
  return req.id === undefined || req.id === null ? null : String(req.id);
}
