import { timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { sha256 } from '../common/sha256';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { ApiKeyRefusedError } from './credentials.error';

/** Header operators send the admin key in. */
export const API_KEY_HEADER = 'x-api-key';

/**
 * Operator endpoints: the request must carry HUB_API_KEY in the X-API-Key header (or as
 * `Authorization: Bearer <key>`). Refusals are 401s that say what is wrong, and counted.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(
    @Inject(HUB_CONFIG) config: HubConfig,
    private readonly metrics: HubMetrics,
  ) {
    this.expected = config.hubApiKey ? sha256(config.hubApiKey) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    if (!this.expected) return this.refuse('not_configured', 'this hub has no HUB_API_KEY configured, so its operator endpoints are disabled');
    const header = req.headers[API_KEY_HEADER];
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const given = (Array.isArray(header) ? header[0] : header) ?? bearer;
    if (!given) return this.refuse('missing', 'missing API key: send the hub\u2019s HUB_API_KEY in the X-API-Key header');
    if (!timingSafeEqual(sha256(given), this.expected)) return this.refuse('wrong', 'wrong API key (X-API-Key does not match HUB_API_KEY)');
    return true;
  }

  private refuse(reason: string, message: string): never {
    this.metrics.apiKeyRefused.inc({ reason });
    throw new ApiKeyRefusedError(message);
  }
}
