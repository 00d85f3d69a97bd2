import { Injectable } from '@nestjs/common';
import { Prisma } from '@shelfsight/db';
import { PrismaService } from '../prisma/prisma.service';

export interface AuditRecord {
  actor: string;
  role: string | null;
  method: string;
  route: string;
  params: Record<string, string>;
  status: number;
  requestId: string | null;
  at: Date;
  /** Client address (denied requests). */
  address?: string | null;
  /** Why the request was denied (missing, unknown, wrong, expired, revoked, role, rate, auth_failures). */
  reason?: string | null;
  /** Requests the entry stands for (1 unless denied requests were coalesced). */
  count?: number;
}

export interface AuditRow {
  id: bigint;
  at: Date;
  actor: string;
  role: string | null;
  method: string;
  route: string;
  params: Record<string, string>;
  status: number;
  request_id: string | null;
  address: string | null;
  reason: string | null;
  count: number;
}

export interface AuditFilter {
  actor?: string;
  route?: string;
  method?: string;
  from?: Date;
  to?: Date;
  before?: bigint;
  limit: number;
}

/** The SQL of the audit log. */
@Injectable()
export class AuditRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Insert an entry; its id. */
  async insert(r: AuditRecord): Promise<bigint> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      INSERT INTO "audit_log" ("at", "actor", "role", "method", "route", "params", "status", "request_id", "address", "reason", "count")
      VALUES (${r.at}, ${r.actor}, ${r.role}, ${r.method}, ${r.route}, ${JSON.stringify(r.params)}::jsonb, ${r.status}, ${r.requestId},
        ${r.address ?? null}, ${r.reason ?? null}, ${r.count ?? 1})
      RETURNING "id"`;
    return rows[0]!.id;
  }

  /** Add `n` requests to a coalesced entry. */
  async addCount(id: bigint, n: number): Promise<void> {
    await this.prisma.$executeRaw`UPDATE "audit_log" SET "count" = "count" + ${n} WHERE "id" = ${id}`;
  }

  /** Newest first; `before` is the id the previous page ended at. */
  find(f: AuditFilter): Promise<AuditRow[]> {
    const where: Prisma.Sql[] = [Prisma.sql`TRUE`];
    if (f.actor) where.push(Prisma.sql`"actor" = ${f.actor}`);
    if (f.route) where.push(Prisma.sql`"route" LIKE ${`${f.route.replace(/[\\%_]/g, '\\$&')}%`}`);
    if (f.method) where.push(Prisma.sql`"method" = ${f.method}`);
    if (f.from) where.push(Prisma.sql`"at" >= ${f.from}`);
    if (f.to) where.push(Prisma.sql`"at" < ${f.to}`);
    if (f.before !== undefined) where.push(Prisma.sql`"id" < ${f.before}`);
    return this.prisma.$queryRaw<AuditRow[]>`
      SELECT "id", "at", "actor", "role", "method", "route", "params", "status", "request_id", "address", "reason", "count" FROM "audit_log"
      WHERE ${Prisma.join(where, ' AND ')} ORDER BY "id" DESC LIMIT ${f.limit}`;
  }
}
