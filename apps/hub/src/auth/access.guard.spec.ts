import { Logger, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ThrottlerStorageService } from '@nestjs/throttler';
import type { ApiKeysService, KeyPrincipal, KeyRefusal } from '../api-keys/api-keys.service';
import type { DeniedRequestAudit } from '../audit/denied-requests';
import type { HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { AccessGuard, AccessRefusedError, NoAccessRuleError } from './access.guard';
import type { RequestWithPrincipal } from './actor';
import { AuthFailureThrottle } from './auth-failure-throttle';
import { Public, RequireRole, ScrapeToken } from './roles';

class Routes {
  @Public() health(): void {}
  @RequireRole('viewer') read(): void {}
  @RequireRole('admin') change(): void {}
  @RequireRole('viewer') @ScrapeToken() metrics(): void {}
  forgotten(): void {}
}

const SCRAPE = 'scrape-token-0123456789';
const VIEWER_KEY = 'shk_viewer';

/** The key store at its boundary: one viewer key, everything else unknown. */
const keys = {
  authenticate: (given: string): Promise<KeyPrincipal | KeyRefusal> =>
    Promise.resolve(given === VIEWER_KEY ? { id: 'key:v1', role: 'viewer', keyId: 'v1', expiresAt: null } : 'wrong'),
} as unknown as ApiKeysService;

describe(AccessGuard.name, () => {
  let metrics: HubMetrics;
  /** Denials noted for the audit log, as status/reason. */
  let denied: string[];
  let throttle: AuthFailureThrottle;
  let clock: number;
  const config = { metricsToken: SCRAPE, authFailuresPerMinute: 3 } as HubConfig;
  const build = (anonymousViewer: boolean) =>
    new AccessGuard(new Reflector(), keys, metrics, config, { anonymousViewer }, {
      note: (_req: unknown, status: number, reason: string) => void denied.push(`${status}/${reason}`),
    } as unknown as DeniedRequestAudit, throttle);
  const context = (handler: keyof Routes, headers: Record<string, string> = {}, method = 'GET', ip = '10.0.0.1') => {
    const req = { method, path: `/${handler}`, ip, headers, params: {}, route: { path: `/${handler}` } } as unknown as RequestWithPrincipal;
    const responseHeaders: Record<string, string> = {};
    const ctx = {
      getType: () => 'http',
      getHandler: () => Routes.prototype[handler],
      getClass: () => Routes,
      switchToHttp: () => ({ getRequest: () => req, getResponse: () => ({ setHeader: (k: string, v: string) => (responseHeaders[k] = v) }) }),
    } as unknown as ExecutionContext;
    return { ctx, req, responseHeaders };
  };
  const refusal = async (p: Promise<boolean>) => p.then(() => undefined, (e: unknown) => e as AccessRefusedError);

  beforeAll(() => jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined));
  beforeEach(() => {
    metrics = new HubMetrics();
    denied = [];
    clock = Date.now();
    throttle = new AuthFailureThrottle(new ThrottlerStorageService(), config);
    throttle.now = () => clock;
  });

  it('refuses a route that has neither @RequireRole nor @Public with 500 "route has no access rule"', async () => {
    const err = await refusal(build(false).canActivate(context('forgotten', { 'x-api-key': VIEWER_KEY }).ctx));
    expect(err).toBeInstanceOf(NoAccessRuleError);
    expect(err!.getStatus()).toBe(500);
    expect(err!.getResponse()).toMatchObject({ message: 'route has no access rule' });
  });

  it('lets anyone call public routes, and sets the principal of a valid key', async () => {
    const sut = build(false);
    expect(await sut.canActivate(context('health').ctx)).toBe(true);
    const { ctx, req } = context('read', { 'x-api-key': VIEWER_KEY });
    expect(await sut.canActivate(ctx)).toBe(true);
    expect(req.principal).toMatchObject({ id: 'key:v1', role: 'viewer' });
  });

  it('answers 401 without a key and 403 for too weak a role, counting and auditing each', async () => {
    const sut = build(false);
    expect((await refusal(sut.canActivate(context('read').ctx)))!.getStatus()).toBe(401);
    expect((await refusal(sut.canActivate(context('change', { 'x-api-key': VIEWER_KEY }, 'POST').ctx)))!.getStatus()).toBe(403);
    expect((await refusal(sut.canActivate(context('read', { 'x-api-key': 'nonsense' }).ctx)))!.getStatus()).toBe(401);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^shelfsight_api_key_refused_total\{reason="missing"\} 1$/m);
    expect(text).toMatch(/^shelfsight_api_key_refused_total\{reason="role"\} 1$/m);
    expect(text).toMatch(/^shelfsight_api_key_refused_total\{reason="wrong"\} 1$/m);
    expect(denied).toEqual(['401/missing', '403/role', '401/wrong']);
  });

  it('throttles refused keys per address: past the limit, keyed requests from it get 429 without a key check, until the block ends', async () => {
    const sut = build(false);
    for (let i = 0; i < 4; i++) expect((await refusal(sut.canActivate(context('read', { 'x-api-key': `guess-${i}` }).ctx)))!.getStatus()).toBe(401);
    // Blocked now: even the right key is not looked at, and the answer says when to come back.
    const blocked = context('read', { 'x-api-key': VIEWER_KEY });
    const err = await refusal(sut.canActivate(blocked.ctx));
    expect(err!.getStatus()).toBe(429);
    expect(Number(blocked.responseHeaders['Retry-After'])).toBeGreaterThan(0);
    // Another address is not affected.
    expect(await sut.canActivate(context('read', { 'x-api-key': VIEWER_KEY }, 'GET', '10.0.0.2').ctx)).toBe(true);
    expect(await metrics.registry.metrics()).toMatch(/^shelfsight_api_key_refused_total\{reason="auth_failures"\} 1$/m);
    expect(denied.slice(-1)).toEqual(['429/auth_failures']);
    // After the block the address may authenticate again.
    clock += 61_000;
    expect(throttle.blockedFor('10.0.0.1')).toBe(0);
    expect(await sut.canActivate(context('read', { 'x-api-key': VIEWER_KEY }).ctx)).toBe(true);
  });

  it('admits the metrics scrape token on /metrics only', async () => {
    const sut = build(false);
    expect(await sut.canActivate(context('metrics', { authorization: `Bearer ${SCRAPE}` }).ctx)).toBe(true);
    expect((await refusal(sut.canActivate(context('read', { authorization: `Bearer ${SCRAPE}` }).ctx)))!.getStatus()).toBe(401);
  });

  it('admits anonymous readers on viewer routes only in demo mode, never on stronger ones', async () => {
    const demo = build(true);
    const { ctx, req } = context('read');
    expect(await demo.canActivate(ctx)).toBe(true);
    expect(req.principal).toEqual({ id: 'anonymous', role: 'viewer' });
    expect((await refusal(demo.canActivate(context('change', {}, 'POST').ctx)))!.getStatus()).toBe(401);
    expect((await refusal(build(false).canActivate(context('read').ctx)))!.getStatus()).toBe(401);
  });

  it('leaves MQTT handlers to the broker', async () => {
    const ctx = { getType: () => 'rpc' } as unknown as ExecutionContext;
    expect(await build(false).canActivate(ctx)).toBe(true);
  });
});
