import { timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, HttpException, HttpStatus, Inject, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { sha256Hex } from '../api-keys/api-key-format';
import { ApiKeysService } from '../api-keys/api-keys.service';
import { DeniedRequestAudit } from '../audit/denied-requests';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import type { RequestWithPrincipal } from './actor';
import { AuthFailureThrottle } from './auth-failure-throttle';
import { isDownloadTokenAuthorization } from '../rollouts/download-token-format';
import { DEVICE_CREDENTIAL_KEY, PUBLIC_KEY, REQUIRED_ROLE_KEY, roleAtLeast, SCRAPE_TOKEN_KEY, type Role } from './roles';

/** Header people and tools send their API key in (or `Authorization: Bearer <key>`). */
export const API_KEY_HEADER = 'x-api-key';

/** How the app was started; not a setting, so nothing but `startHub`'s caller can choose it. */
export interface AccessOptions {
  /** Requests without a key may call viewer endpoints (the zero-config demo, `shelf start`, only). */
  anonymousViewer: boolean;
}
export const ACCESS_OPTIONS = Symbol('ACCESS_OPTIONS');

const STATUS_NAMES = { 401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests' } as const;

export class AccessRefusedError extends HttpException {
  constructor(status: 401 | 403 | 429, message: string) {
    super({ statusCode: status, error: STATUS_NAMES[status], message }, status as HttpStatus);
  }
}

export class NoAccessRuleError extends HttpException {
  constructor() {
    super({ statusCode: 500, message: 'route has no access rule' }, HttpStatus.INTERNAL_SERVER_ERROR);
  }
}

const REFUSAL_MESSAGES: Record<string, string> = {
  missing: 'missing API key: send it in the X-API-Key header (or Authorization: Bearer <key>)',
  unknown: 'unknown API key (no key with this id)',
  wrong: 'wrong API key',
  expired: 'API key expired',
  revoked: 'API key revoked',
  auth_failures: 'too many refused API keys from this address; try again later',
};

/**
 * The hub's one access rule for HTTP, global and deny-by-default: every route declares
 * `@Public()` or `@RequireRole(role)` (a route with neither answers 500 and is caught by
 * the route test). The key (X-API-Key or Bearer) must be valid, unexpired, unrevoked and
 * of at least the role; refusals are 401 (who are you?) or 403 (not allowed), counted by
 * reason, and audited (coalesced per address and reason). Refused keys are throttled per
 * client address (AUTH_FAILURES_PER_MINUTE): past it, keyed requests from the address are
 * answered 429 without looking at the key. `/metrics` also takes METRICS_TOKEN; routes
 * marked `@DeviceCredential()` also let HTTP basic auth through to their handler, which
 * checks the device credential. MQTT handlers are not HTTP: the broker's access control
 * guards those.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly log = new Logger('Access');
  private readonly metricsTokenDigest?: Buffer;

  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeysService,
    private readonly metrics: HubMetrics,
    @Inject(HUB_CONFIG) config: HubConfig,
    @Inject(ACCESS_OPTIONS) private readonly options: AccessOptions,
    private readonly denied: DeniedRequestAudit,
    private readonly authFailures: AuthFailureThrottle,
  ) {
    this.metricsTokenDigest = config.metricsToken ? Buffer.from(sha256Hex(config.metricsToken), 'hex') : undefined;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const need = this.reflector.getAllAndOverride<Role | undefined>(REQUIRED_ROLE_KEY, targets);
    const req = context.switchToHttp().getRequest<RequestWithPrincipal>();
    if (!need) {
      this.log.error(`${req.method} ${req.path}: route has no access rule (add @RequireRole or @Public)`);
      throw new NoAccessRuleError();
    }
    const given = presentedKey(req);
    if (isDeviceAuthorization(req) && this.reflector.getAllAndOverride<boolean>(DEVICE_CREDENTIAL_KEY, targets)) {
      // A device with its credential or a download token: the handler verifies it (see DeviceCredential); its
      // refusals (401) count towards the address's failed authentications like refused keys.
      const address = req.ip ?? 'unknown';
      const blockedFor = this.authFailures.blockedFor(address);
      const res = context.switchToHttp().getResponse<Response>();
      if (blockedFor > 0) {
        res.setHeader('Retry-After', String(blockedFor));
        return this.refuse(req, 429, 'auth_failures');
      }
      res.once('finish', () => {
        if (res.statusCode === 401) void this.authFailures.failed(address);
      });
      return true;
    }
    if (given === undefined) {
      if (this.options.anonymousViewer && need === 'viewer') {
        req.principal = { id: 'anonymous', role: 'viewer' };
        return true;
      }
      return this.refuse(req, 401, 'missing');
    }
    const address = req.ip ?? 'unknown';
    const blockedFor = this.authFailures.blockedFor(address);
    if (blockedFor > 0) {
      context.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(blockedFor));
      return this.refuse(req, 429, 'auth_failures');
    }
    if (this.metricsTokenDigest && this.reflector.getAllAndOverride<boolean>(SCRAPE_TOKEN_KEY, targets)) {
      if (timingSafeEqual(Buffer.from(sha256Hex(given), 'hex'), this.metricsTokenDigest)) {
        req.principal = { id: 'metrics-token', role: 'viewer' };
        return true;
      }
    }
    const found = await this.keys.authenticate(given);
    if (typeof found === 'string') {
      await this.authFailures.failed(address);
      return this.refuse(req, 401, found);
    }
    req.principal = found;
    if (!roleAtLeast(found.role, need)) return this.refuse(req, 403, 'role', `this needs a ${need} key; key ${found.keyId} is ${found.role}`);
    return true;
  }

  private refuse(req: RequestWithPrincipal, status: 401 | 403 | 429, reason: string, message = REFUSAL_MESSAGES[reason] ?? reason): never {
    this.metrics.apiKeyRefused.inc({ reason });
    this.denied.note(req, status, reason);
    throw new AccessRefusedError(status, message);
  }
}

/** A device's own authorization (no API key): HTTP basic with its credential, or a rollout download token. */
function isDeviceAuthorization(req: RequestWithPrincipal): boolean {
  if (req.headers[API_KEY_HEADER] !== undefined) return false;
  const authorization = req.headers.authorization;
  return /^Basic\s/i.test(authorization ?? '') || isDownloadTokenAuthorization(authorization);
}

function presentedKey(req: RequestWithPrincipal): string | undefined {
  const header = req.headers[API_KEY_HEADER];
  const value = Array.isArray(header) ? header[0] : header;
  if (value) return value;
  return /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
}
