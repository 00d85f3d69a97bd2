import { type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerOptions, InjectThrottlerStorage, ThrottlerGuard, type ThrottlerLimitDetail, type ThrottlerModuleOptions, type ThrottlerStorage } from '@nestjs/throttler';
import { DeniedRequestAudit } from '../audit/denied-requests';
import { HubMetrics } from '../metrics/hub-metrics';
import type { RequestWithPrincipal } from './actor';
import { PUBLIC_KEY } from './roles';

/**
 * Per-key request rate limit (HTTP_RATE_PER_MINUTE): counted per API key id, or per address
 * for requests without one. Runs after the access guard, which has set the principal.
 * Public routes (health, docs) are not limited; a refusal is a 429, counted and audited
 * (coalesced per address).
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly metrics: HubMetrics,
    private readonly denied: DeniedRequestAudit,
  ) {
    super(options, storage, reflector);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    return super.canActivate(context);
  }

  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    return Promise.resolve(this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, [context.getHandler(), context.getClass()]) === true);
  }

  protected override getTracker(req: Record<string, unknown>): Promise<string> {
    const r = req as unknown as RequestWithPrincipal;
    const id = r.principal && r.principal.id !== 'anonymous' ? r.principal.id : `ip:${r.ip ?? 'unknown'}`;
    return Promise.resolve(id);
  }

  protected override async throwThrottlingException(context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    this.metrics.httpRateLimited.inc();
    this.denied.note(context.switchToHttp().getRequest<RequestWithPrincipal>(), 429, 'rate');
    return super.throwThrottlingException(context, detail);
  }
}
