import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { DeniedRequestAudit, listRouteRules, type RouteRule } from '@shelfsight/hub';
import { spawnShelf } from '@shelfsight/cli';
import type { DatabaseKind } from './support/databases';
import { hasExternalPostgres } from './support/services';
import { eventually, getJson, hubFetch, startTestHub, TEST_ADMIN_KEY, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

type Role = 'viewer' | 'operator' | 'admin';
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

interface CreatedKey {
  id: string;
  key: string;
  role: Role;
  expiresAt: string | null;
  revokedAt: string | null;
}

/** A concrete URL for a route pattern: each path parameter gets a plausible, harmless value. */
function concrete(route: RouteRule, tag: string): string {
  return route.path.replace(/:(\w+)/g, (_m, name: string) => {
    if (route.path.startsWith('/api-keys')) return '0000000000000000';
    if (route.path.startsWith('/devices')) return `acl-${tag}`;
    if (name === 'code') return 'A-01-1-A';
    return 'x1';
  });
}

const metric = async (sut: TestHub, line: string): Promise<number> => {
  const text = await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.split(' ').pop()) : 0;
};

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`REST access control (${variant.db})`, () => {
    let sut: TestHub;
    const tag = randomBytes(3).toString('hex');
    const keys: Record<string, string | null> = {};
    const api = (path: string) => `${sut.hub.httpUrl}${path}`;
    const call = (method: string, path: string, key: string | null, body?: unknown) =>
      hubFetch(api(path), {
        method,
        apiKey: key,
        ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } } : {}),
      });
    const createKey = async (role: Role, by: string = TEST_ADMIN_KEY, expiresAt?: string): Promise<CreatedKey> => {
      const res = await call('POST', '/api-keys', by, { name: `${role} key ${tag}`, role, ...(expiresAt ? { expiresAt } : {}) });
      expect(res.status).toBe(201);
      return (await res.json()) as CreatedKey;
    };

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes');
      keys.none = null;
      keys.viewer = (await createKey('viewer')).key;
      keys.operator = (await createKey('operator')).key;
      keys.admin = (await createKey('admin')).key;
      const expiring = await createKey('admin', TEST_ADMIN_KEY, new Date(Date.now() + 1500).toISOString());
      keys.expired = expiring.key;
      const revoked = await createKey('admin');
      expect((await call('POST', `/api-keys/${revoked.id}/revoke`, TEST_ADMIN_KEY)).status).toBe(200);
      keys.revoked = revoked.key;
      // Until it has expired the expiring key works...
      expect((await call('GET', '/inventory', keys.expired)).status).toBe(200);
      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiring.expiresAt!) - Date.now() + 50)));
    });

    afterAll(async () => {
      await sut?.stop();
    });

    it('gives every HTTP route of the app an access rule, and the documented one for each endpoint group', () => {
      const routes = listRouteRules(sut.hub.app);
      expect(routes.length).toBeGreaterThan(10);
      const without = routes.filter((r) => r.access === undefined).map((r) => `${r.method} ${r.path} (${r.handler})`);
      expect(without).toEqual([]);
      const rule = (method: string, path: string) => routes.find((r) => r.method === method && r.path === path)?.access;
      expect(rule('GET', '/health')).toBe('public');
      for (const p of ['/inventory', '/inventory/history', '/locations', '/locations/:code', '/detections', '/devices', '/metrics']) expect(rule('GET', p)).toBe('viewer');
      for (const [m, p] of [['POST', '/api-keys'], ['GET', '/api-keys'], ['POST', '/api-keys/:id/revoke'], ['GET', '/audit'], ['POST', '/devices/:id/credentials'], ['DELETE', '/devices/:id/credentials']]) {
        expect(rule(m!, p!)).toBe('admin');
      }
      expect(routes.find((r) => r.path === '/metrics')?.scrapeToken).toBe(true);
    });

    it('answers each principal on each route as its role allows: none, expired and revoked 401; too weak 403; enough passes', async () => {
      const routes = listRouteRules(sut.hub.app);
      const cells: string[] = [];
      const wrong: string[] = [];
      for (const route of routes) {
        const path = concrete(route, tag);
        for (const who of ['none', 'viewer', 'operator', 'admin', 'expired', 'revoked']) {
          const res = await call(route.method, path, keys[who]!, route.method === 'GET' ? undefined : {});
          // A live stream (GET /events) never ends: its status and headers are the answer.
          const stream = res.headers.get('content-type')?.startsWith('text/event-stream');
          if (stream) await res.body?.cancel();
          const body = (stream ? {} : await res.json().catch(() => ({}))) as { message?: unknown };
          let expected: 'allowed' | 401 | 403;
          if (route.access === 'public') expected = 'allowed';
          else if (who === 'none' || who === 'expired' || who === 'revoked') expected = 401;
          else expected = RANK[who as Role] >= RANK[route.access as Role] ? 'allowed' : 403;
          const ok = expected === 'allowed' ? res.status !== 401 && res.status !== 403 && body.message !== 'route has no access rule' : res.status === expected;
          cells.push(`${route.method} ${route.path} ${who}: ${res.status}`);
          if (!ok) wrong.push(`${route.method} ${path} as ${who}: expected ${expected}, got ${res.status} ${JSON.stringify(body)}`);
        }
      }
      expect(wrong).toEqual([]);
      expect(cells.length).toBe(routes.length * 6);
      expect(await metric(sut, 'shelfsight_api_key_refused_total{reason="expired"}')).toBeGreaterThan(0);
      expect(await metric(sut, 'shelfsight_api_key_refused_total{reason="revoked"}')).toBeGreaterThan(0);
      expect(await metric(sut, 'shelfsight_api_key_refused_total{reason="role"}')).toBeGreaterThan(0);
      expect(await metric(sut, 'shelfsight_api_key_refused_total{reason="missing"}')).toBeGreaterThan(0);
    });

    it('says why a key is refused, and counts it', async () => {
      const before = await metric(sut, 'shelfsight_api_key_refused_total{reason="unknown"}');
      const unknown = await call('GET', '/inventory', `shk_${'1'.repeat(16)}_${'a'.repeat(43)}`);
      expect(unknown.status).toBe(401);
      expect(((await unknown.json()) as { message: string }).message).toMatch(/unknown API key/);
      expect(await metric(sut, 'shelfsight_api_key_refused_total{reason="unknown"}')).toBe(before + 1);
      const expired = await call('GET', '/inventory', keys.expired!);
      expect(((await expired.json()) as { message: string }).message).toBe('API key expired');
      const tampered = keys.viewer!.slice(0, -1) + (keys.viewer!.endsWith('A') ? 'B' : 'A');
      expect(((await (await call('GET', '/inventory', tampered)).json()) as { message: string }).message).toBe('wrong API key');
      const weak = await call('POST', '/api-keys', keys.operator!, { name: 'x', role: 'viewer' });
      expect(weak.status).toBe(403);
      expect(((await weak.json()) as { message: string }).message).toMatch(/needs a admin key; key [0-9a-f]{16} is operator/);
      // Bearer works like X-API-Key.
      expect((await fetch(api('/inventory'), { headers: { Authorization: `Bearer ${keys.viewer}` } })).status).toBe(200);
    });

    it('shows a key once, lists keys without secrets, and never lets a key create one that outlives it', async () => {
      const created = await createKey('viewer');
      expect(created.key).toMatch(new RegExp(`^shk_${created.id}_[A-Za-z0-9_-]{43}$`));
      const list = (await getJson<Array<Record<string, unknown>>>(api('/api-keys'))).body;
      const listed = list.find((k) => k.id === created.id)!;
      expect(listed).toMatchObject({ role: 'viewer', createdBy: 'key:bootstrap', revokedAt: null });
      expect(JSON.stringify(list)).not.toContain(created.key.split('_').slice(2).join('_'));
      expect(listed).not.toHaveProperty('key');

      const until = new Date(Date.now() + 3_600_000).toISOString();
      const shortLived = await createKey('admin', TEST_ADMIN_KEY, until);
      // A key made by an expiring key expires with it at the latest...
      const child = await createKey('viewer', shortLived.key);
      expect(child.expiresAt).toBe(until);
      const longer = await call('POST', '/api-keys', shortLived.key, { name: 'longer', role: 'viewer', expiresAt: new Date(Date.now() + 7_200_000).toISOString() });
      expect(longer.status).toBe(403);
      expect(((await longer.json()) as { message: string }).message).toMatch(/cannot create one that outlives it/);
      // ...and nobody can revoke the bootstrap key or send nonsense.
      expect((await call('POST', '/api-keys/bootstrap/revoke', TEST_ADMIN_KEY)).status).toBe(400);
      expect((await call('POST', '/api-keys', TEST_ADMIN_KEY, { name: 'x', role: 'root' })).status).toBe(400);
      expect((await call('POST', '/api-keys', TEST_ADMIN_KEY, { name: 'x', role: 'viewer', __proto__: { role: 'admin' }, extra: 1 })).status).toBe(400);
    });

    it('revokes a key at once', async () => {
      const k = await createKey('operator');
      expect((await call('GET', '/devices', k.key)).status).toBe(200);
      const revoked = await call('POST', `/api-keys/${k.id}/revoke`, TEST_ADMIN_KEY);
      expect(((await revoked.json()) as CreatedKey).revokedAt).not.toBeNull();
      expect((await call('GET', '/devices', k.key)).status).toBe(401);
      expect((await call('POST', '/api-keys/ffffffffffffffff/revoke', TEST_ADMIN_KEY)).status).toBe(404);
    });

    it('keeps health and the API docs open, and admits the metrics scrape token only where it is set', async () => {
      expect((await call('GET', '/health', null)).status).toBe(200);
      expect((await call('GET', '/docs', null)).status).toBe(200);
      expect((await call('GET', '/docs-json', null)).status).toBe(200);
      expect((await call('GET', '/metrics', null)).status).toBe(401);
      expect((await call('GET', '/metrics', keys.viewer!)).status).toBe(200);
    });

    it('records who changed what in the audit log, with the request id, filterable and paged', async () => {
      const requestId = `req-${tag}`;
      const res = await hubFetch(api('/api-keys'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId },
        body: JSON.stringify({ name: `audited ${tag}`, role: 'viewer' }),
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('x-request-id')).toBe(requestId);
      // A fresh viewer key: its first refusal is an entry of its own (later ones within AUDIT_DENIED_INTERVAL_S add to its count).
      const viewer = await createKey('viewer');
      const viewerId = viewer.key.split('_')[1]!;
      expect((await call('POST', `/devices/acl-${tag}/credentials`, viewer.key)).status).toBe(403);
      type Page = { items: Array<{ actor: string; role: string; method: string; route: string; params: Record<string, string>; status: number; requestId: string; reason: string | null }>; nextCursor: string | null };
      const refusedHere = await eventually(async () => {
        const p = (await getJson<Page>(api(`/audit?actor=key:${viewerId}&route=/devices/&limit=500`))).body;
        return p.items.find((e) => e.params.id === `acl-${tag}`);
      });
      expect(refusedHere).toMatchObject({ actor: `key:${viewerId}`, role: 'viewer', method: 'POST', route: '/devices/:id/credentials', params: { id: `acl-${tag}` }, status: 403, reason: 'role' });
      const mine = (await getJson<Page>(api(`/audit?route=/api-keys&actor=key:bootstrap&limit=500`))).body.items.find((e) => e.requestId === requestId);
      expect(mine).toMatchObject({ actor: 'key:bootstrap', role: 'admin', method: 'POST', route: '/api-keys', status: 201 });
      // Reads are not audited (denied ones are); pages follow the cursor without overlap.
      expect((await getJson<Page>(api('/audit?limit=500'))).body.items.every((e) => e.method !== 'GET' || e.reason !== null)).toBe(true);
      const first = (await getJson<Page>(api('/audit?limit=2'))).body;
      const second = (await getJson<Page>(api(`/audit?limit=2&cursor=${first.nextCursor}`))).body;
      expect(first.items).toHaveLength(2);
      expect(second.items.length).toBeGreaterThan(0);
      expect(new Set([...first.items, ...second.items].map((e) => JSON.stringify(e))).size).toBe(first.items.length + second.items.length);
      expect((await getJson(api('/audit'), keys.operator!)).status).toBe(403);
      expect((await getJson(api('/audit?from=yesterday'))).status).toBe(400);
    });

    it('audits refused keys (401) of one address and reason as one entry per interval, with their count', async () => {
      type Entry = { actor: string; method: string; route: string; status: number; address: string | null; reason: string | null; count: number };
      const denied = sut.hub.app.get(DeniedRequestAudit);
      const wrongKey = keys.viewer!.slice(0, -4) + 'zzzz';
      const entries = async () => (await getJson<{ items: Entry[] }>(api('/audit?actor=anonymous&limit=500'))).body.items.filter((e) => e.reason === 'wrong');
      await denied.flush();
      const before = await entries();
      for (let i = 0; i < 7; i++) expect((await call('GET', '/inventory', wrongKey)).status).toBe(401);
      await denied.flush();
      const after = await entries();
      expect(after).toHaveLength(before.length + 1);
      expect(after[0]).toMatchObject({ actor: 'anonymous', method: 'GET', route: '/inventory', status: 401, reason: 'wrong', count: 7 });
      expect(after[0]!.address).toMatch(/127\.0\.0\.1/);
    });
  });

  d(`refused keys throttled per address, denials audited (${variant.db})`, () => {
    let sut: TestHub;
    let sql: Client;
    const api = (path: string) => `${sut.hub.httpUrl}${path}`;
    const denials = async (reason: string) =>
      (await sql.query<{ actor: string; status: number; count: number }>('SELECT actor, status, count FROM audit_log WHERE reason = $1 ORDER BY id', [reason])).rows;

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes', { AUTH_FAILURES_PER_MINUTE: '3', HTTP_RATE_PER_MINUTE: '20' });
      sql = new Client({ connectionString: sut.hub.databaseUrl });
      await sql.connect();
    });

    afterAll(async () => {
      await sql?.end();
      await sut?.stop();
    });

    it('answers 429 past HTTP_RATE_PER_MINUTE and audits it once per address', async () => {
      const res = await hubFetch(api('/api-keys'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'busy', role: 'viewer' }) });
      const busy = ((await res.json()) as CreatedKey).key;
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++) statuses.push((await getJson(api('/inventory'), busy)).status);
      expect(statuses.filter((s) => s === 429)).toHaveLength(5);
      await sut.hub.app.get(DeniedRequestAudit).flush();
      expect(await denials('rate')).toEqual([{ actor: `key:${busy.split('_')[1]}`, status: 429, count: 5 }]);
    });

    it('answers 429 to every keyed request of an address past AUTH_FAILURES_PER_MINUTE refused keys, without looking at the key', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await getJson(api('/inventory'), `shk_000000000000000${i}_${'x'.repeat(43)}`)).status);
      expect(statuses).toEqual([401, 401, 401, 401]);
      // Blocked now: even the admin key is refused, and the answer says when to come back.
      const blocked = await hubFetch(api('/inventory'));
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      // Requests without a key are not throttled by it (they are refused as before).
      expect((await getJson(api('/inventory'), null)).status).toBe(401);
      await sut.hub.app.get(DeniedRequestAudit).flush();
      expect(await denials('unknown')).toEqual([{ actor: 'anonymous', status: 401, count: 4 }]);
      expect(await denials('auth_failures')).toEqual([{ actor: 'anonymous', status: 429, count: 1 }]);
    });
  });
}

describe('first start and the demo', () => {
  it('creates an admin key at first start when none exists, in a file only its user can read', async () => {
    const sut = await startTestHub('pglite', 'aedes', { HUB_API_KEY: '' });
    try {
      const file = join(sut.dataDir, 'admin-api-key');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const key = readFileSync(file, 'utf8').trim();
      expect(key).toMatch(/^shk_[0-9a-f]{16}_/);
      const list = await getJson<Array<{ role: string; name: string }>>(`${sut.hub.httpUrl}/api-keys`, key);
      expect(list.status).toBe(200);
      expect(list.body).toEqual([expect.objectContaining({ role: 'admin', name: 'first admin key' })]);
      expect((await getJson(`${sut.hub.httpUrl}/inventory`, null)).status).toBe(401);

      // `shelf key create|list|revoke` with that key.
      const shelf = async (...args: string[]) => {
        const p = spawnShelf(['key', ...args, '--hub-url', sut.hub.httpUrl], { HUB_API_KEY: key });
        const code = await p.exited;
        return { code, out: p.stdout(), err: p.stderr() };
      };
      const created = await shelf('create', '--name', 'grafana', '--role', 'viewer', '--expires', '30d');
      expect(created.code).toBe(0);
      const viewerKey = created.out.trim();
      expect(viewerKey).toMatch(/^shk_[0-9a-f]{16}_/);
      expect(created.err).toMatch(/created viewer key [0-9a-f]{16} "grafana", expires 20/);
      expect((await getJson(`${sut.hub.httpUrl}/inventory`, viewerKey)).status).toBe(200);
      const listed = await shelf('list');
      expect(listed.out).toMatch(/grafana/);
      expect(listed.out).not.toContain(viewerKey);
      const id = viewerKey.split('_')[1]!;
      expect((await shelf('revoke', id)).out).toMatch(new RegExp(`revoked key ${id} "grafana"`));
      expect((await getJson(`${sut.hub.httpUrl}/inventory`, viewerKey)).status).toBe(401);
      const refused = await shelf('create', '--name', 'x', '--role', 'admin', '--api-key', viewerKey);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/HTTP 401 API key revoked/);
    } finally {
      await sut.stop();
    }
  });

  it('lets anonymous readers see the viewer endpoints only when started as the demo', async () => {
    const sut = await startTestHub('pglite', 'aedes', {}, { anonymousViewer: true });
    try {
      for (const route of listRouteRules(sut.hub.app)) {
        const res = await hubFetch(`${sut.hub.httpUrl}${concrete(route, 'demo')}`, { method: route.method, apiKey: null });
        if (route.access === 'viewer' || route.access === 'public') expect([route.path, res.status]).not.toEqual([route.path, 401]);
        else expect([route.path, res.status]).toEqual([route.path, 401]);
      }
    } finally {
      await sut.stop();
    }
  });
});
