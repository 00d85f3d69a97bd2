import type { Request } from 'express';

export type RequestWithId = Request & { id?: unknown };

/** The request's id as the logger set it (`req.id`, from X-Request-Id or generated): the audit log records it. */
export function requestIdOf(req: RequestWithId): string | null {
  return req.id === undefined || req.id === null ? null : String(req.id);
}
