import type { RequestWithPrincipal } from '../auth/actor';
import type { HubConfig } from '../config/hub-config';
import type { AuditRecord } from './audit.repository';
import type { AuditService } from './audit.service';
import { DeniedRequestAudit } from './denied-requests';

/** The audit log at its boundary: entries as written, counts as added. */
class AuditLog {
  readonly rows: Array<AuditRecord & { id: bigint }> = [];
  record(r: AuditRecord): Promise<bigint> {
    const id = BigInt(this.rows.length + 1);
    this.rows.push({ ...r, id });
    return Promise.resolve(id);
  }
  addCount(id: bigint, n: number): Promise<void> {
    const row = this.rows.find((r) => r.id === id)!;
    row.count = (row.count ?? 1) + n;
    return Promise.resolve();
  }
}

const request = (ip: string, path = '/inventory') =>
  ({ method: 'GET', path, ip, headers: {}, params: {}, route: { path } }) as unknown as RequestWithPrincipal;

describe(DeniedRequestAudit.name, () => {
  let log: AuditLog;
  let clock: number;
  let sut: DeniedRequestAudit;

  beforeEach(() => {
    log = new AuditLog();
    clock = Date.parse('2026-12-01T12:00:00Z');
    sut = new DeniedRequestAudit(log as unknown as AuditService, { auditDeniedIntervalS: 60 } as HubConfig);
    sut.now = () => clock;
  });
  afterEach(() => sut.onModuleDestroy());

  it('writes the first denial of an address and reason at once, and counts the rest of the interval into it', async () => {
    for (let i = 0; i < 500; i++) sut.note(request('10.0.0.1'), 401, 'wrong');
    expect(log.rows).toHaveLength(1);
    expect(log.rows[0]).toMatchObject({ address: '10.0.0.1', reason: 'wrong', status: 401, route: '/inventory', method: 'GET', count: 1 });
    clock += 61_000;
    await sut.flush(false);
    expect(log.rows[0]!.count).toBe(500);
  });

  it('keeps one entry per address and reason, and opens a new one after the interval', async () => {
    sut.note(request('10.0.0.1'), 401, 'wrong');
    sut.note(request('10.0.0.1'), 401, 'unknown');
    sut.note(request('10.0.0.2'), 401, 'wrong');
    sut.note(request('10.0.0.1'), 429, 'rate');
    sut.note(request('10.0.0.1'), 401, 'wrong');
    expect(log.rows.map((r) => `${r.address} ${r.status} ${r.reason}`)).toEqual(['10.0.0.1 401 wrong', '10.0.0.1 401 unknown', '10.0.0.2 401 wrong', '10.0.0.1 429 rate']);
    clock += 60_000;
    sut.note(request('10.0.0.1'), 401, 'wrong');
    await sut.flush();
    expect(log.rows).toHaveLength(5);
    expect(log.rows.map((r) => r.count)).toEqual([2, 1, 1, 1, 1]);
  });

  it('keeps refused roles (403) of different keys from one address apart', () => {
    const as = (id: string) => Object.assign(request('10.0.0.1', '/api-keys'), { principal: { id, role: 'viewer' } }) as RequestWithPrincipal;
    sut.note(as('key:a'), 403, 'role');
    sut.note(as('key:b'), 403, 'role');
    sut.note(as('key:a'), 403, 'role');
    expect(log.rows.map((r) => r.actor)).toEqual(['key:a', 'key:b']);
  });
});
