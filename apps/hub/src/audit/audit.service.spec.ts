import { Logger } from '@nestjs/common';
import { decodeCursor } from '../common/query-schemas';
import { HubMetrics } from '../metrics/hub-metrics';
import type { AuditQuery } from './audit.dto';
import type { AuditFilter, AuditRecord, AuditRepository, AuditRow } from './audit.repository';
import { AuditService } from './audit.service';

/** The audit table at its boundary: ids from 1, newest first; `failing` makes every write throw. */
class FakeAudit implements Pick<AuditRepository, 'insert' | 'addCount' | 'find'> {
  readonly rows: AuditRow[] = [];
  failing = false;

  insert(r: AuditRecord): Promise<bigint> {
    if (this.failing) return Promise.reject(new Error('database is down'));
    const id = BigInt(this.rows.length + 1);
    this.rows.push({ id, at: r.at, actor: r.actor, role: r.role, method: r.method, route: r.route, params: r.params, status: r.status, request_id: r.requestId, address: r.address ?? null, reason: r.reason ?? null, count: 1 });
    return Promise.resolve(id);
  }

  addCount(id: bigint, n: number): Promise<void> {
    if (this.failing) return Promise.reject(new Error('database is down'));
    this.rows.find((r) => r.id === id)!.count += n;
    return Promise.resolve();
  }

  find(f: AuditFilter): Promise<AuditRow[]> {
    return Promise.resolve(
      this.rows
        .filter((r) => f.before === undefined || r.id < f.before)
        .sort((a, b) => Number(b.id - a.id))
        .slice(0, f.limit),
    );
  }
}

const entry = (n: number): AuditRecord => ({ actor: 'key:k1', role: 'operator', method: 'POST', route: '/categories', params: {}, status: 201, requestId: `r${n}`, at: new Date(Date.UTC(2026, 11, 1, 0, n)) });

describe(AuditService.name, () => {
  let repo: FakeAudit;
  let metrics: HubMetrics;
  let logged: string[];
  let sut: AuditService;

  beforeEach(() => {
    repo = new FakeAudit();
    metrics = new HubMetrics();
    logged = [];
    jest.spyOn(Logger.prototype, 'error').mockImplementation((m: unknown) => void logged.push(String(m)));
    sut = new AuditService(repo as unknown as AuditRepository, metrics);
  });

  it('never throws a failed write at the request: it resolves undefined, counts the failure and logs the entry', async () => {
    repo.failing = true;
    await expect(sut.record(entry(1))).resolves.toBeUndefined();
    await expect(sut.addCount(1n, 3)).resolves.toBeUndefined();
    expect(await metrics.registry.metrics()).toMatch(/^shelfsight_audit_write_failures_total 2$/m);
    expect(logged[0]).toMatch(/audit entry not written \(database is down\): .*"requestId":"r1"/);
    expect(logged[1]).toMatch(/"add":3/);
  });

  it('returns the id of a written entry, and adds counts to it', async () => {
    const id = await sut.record(entry(1));
    expect(id).toBe(1n);
    await sut.addCount(id!, 4);
    expect(repo.rows[0]!.count).toBe(5);
    expect(await metrics.registry.metrics()).toMatch(/^shelfsight_audit_write_failures_total 0$/m);
  });

  it('pages newest first with a cursor that continues after the last entry, and none on the last page', async () => {
    for (let n = 1; n <= 5; n++) await sut.record(entry(n));
    const first = await sut.find({ limit: 2 } as AuditQuery);
    expect(first.items.map((i) => i.requestId)).toEqual(['r5', 'r4']);
    expect(decodeCursor(first.nextCursor!)).toBe(4n);
    const second = await sut.find({ limit: 3, cursor: first.nextCursor! } as AuditQuery);
    expect(second.items.map((i) => i.id)).toEqual(['3', '2', '1']);
    expect(second.nextCursor).toBeNull();
  });
});
