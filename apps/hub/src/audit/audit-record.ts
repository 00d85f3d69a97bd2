import type { RequestWithPrincipal } from '../auth/actor';
import type { AuditRecord } from './audit.repository';
import { requestIdOf, type RequestWithId } from './request-id';

/** A request whose audit entry should carry a reason (e.g. an operator's written gate override). */
export type RequestWithAuditReason = { auditReason?: string };

/** Give the request's audit entry a reason (written when the request is answered). */
export function setAuditReason(req: object, reason: string): void {
  (req as RequestWithAuditReason).auditReason = reason.slice(0, 2000);
}

/** The audit entry of a request that was answered `status`. */
export function auditRecordOf(req: RequestWithPrincipal & RequestWithId, status: number, at = new Date()): AuditRecord {
  const route = (req.route as { path?: unknown } | undefined)?.path;
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.params ?? {})) if (typeof v === 'string') params[k] = v.slice(0, 200);
  return {
    actor: req.principal?.id ?? 'anonymous',
    role: req.principal?.role ?? null,
    method: req.method,
    route: typeof route === 'string' ? route : req.path.slice(0, 200),
    params,
    status,
    requestId: requestIdOf(req),
    at,
    ...((req as RequestWithAuditReason).auditReason ? { reason: (req as RequestWithAuditReason).auditReason } : {}),
  };
}
