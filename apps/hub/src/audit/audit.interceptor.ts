import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import type { Response } from 'express';
import type { Observable } from 'rxjs';
import type { RequestWithPrincipal } from '../auth/actor';
import { type RequestWithId } from './request-id';
import { AuditService } from './audit.service';
import { auditRecordOf } from './audit-record';

const CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Every state-changing REST request by a principal is written to the audit log once it
 * is answered (with its final status, errors included). Refusals by role are recorded by
 * the access guard, which stops them before this runs.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(private readonly audit: AuditService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() === 'http') {
      const req = context.switchToHttp().getRequest<RequestWithPrincipal & RequestWithId>();
      const res = context.switchToHttp().getResponse<Response>();
      if (CHANGING.has(req.method) && req.principal) {
        const at = new Date();
        res.once('finish', () => void this.audit.record(auditRecordOf(req, res.statusCode, at)));
      }
    }
    return next.handle();
  }
}
