import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { Role } from './roles';

/** Who made a request: set on the request by the access guard. */
export interface Principal {
  /** `key:<key id>` for an API key, `anonymous` for the demo's open read access. */
  id: string;
  role: Role;
}

export type RequestWithPrincipal = Request & { principal?: Principal };

/** The acting principal's id (for records such as "labelled by"); `anonymous` when none. */
export const Actor = createParamDecorator((_data: unknown, ctx: ExecutionContext): string => {
  const req = ctx.switchToHttp().getRequest<RequestWithPrincipal>();
  return req.principal?.id ?? 'anonymous';
});

/** The acting principal itself (the access guard has set it on every route that is not public). */
export const CurrentPrincipal = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<RequestWithPrincipal>();
  return req.principal ?? { id: 'anonymous', role: 'viewer' };
});
