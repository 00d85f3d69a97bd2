import { Injectable, Logger } from '@nestjs/common';
import { decodeCursor, encodeCursor } from '../common/query-schemas';
import { HubMetrics } from '../metrics/hub-metrics';
import type { AuditPageDto, AuditQuery } from './audit.dto';
import { AuditRepository, type AuditRecord } from './audit.repository';

/** Records who changed what (every state-changing REST request by a principal), and denied requests, and answers GET /audit. */
@Injectable()
export class AuditService {
  private readonly log = new Logger('Audit');

  constructor(
    private readonly repo: AuditRepository,
    private readonly metrics: HubMetrics,
  ) {}

  /** Write an entry; a failure is logged (with the entry) and counted, never thrown at the request. */
  record(entry: AuditRecord): Promise<bigint | undefined> {
    return this.repo.insert(entry).catch((e: unknown) => {
      this.failed(e, entry);
      return undefined;
    });
  }

  /** Add `n` requests to a coalesced entry (denied requests); a failure is logged and counted. */
  addCount(id: bigint, n: number): Promise<void> {
    return this.repo.addCount(id, n).catch((e: unknown) => this.failed(e, { id: id.toString(), add: n }));
  }

  private failed(e: unknown, entry: unknown): void {
    this.metrics.auditFailures.inc();
    this.log.error(`audit entry not written (${(e as Error).message}): ${JSON.stringify(entry)}`);
  }

  async find(q: AuditQuery): Promise<AuditPageDto> {
    const rows = await this.repo.find({ ...q, before: decodeCursor(q.cursor), limit: q.limit + 1 });
    const page = rows.slice(0, q.limit);
    return {
      items: page.map((r) => ({
        id: r.id.toString(),
        at: r.at.toISOString(),
        actor: r.actor,
        role: r.role,
        method: r.method,
        route: r.route,
        params: r.params,
        status: r.status,
        requestId: r.request_id,
        address: r.address,
        reason: r.reason,
        count: r.count,
      })),
      nextCursor: rows.length > q.limit ? encodeCursor(page[page.length - 1]!.id) : null,
    };
  }
}
