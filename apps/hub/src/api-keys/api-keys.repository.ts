import { Injectable } from '@nestjs/common';
import { PrismaService } from '../prisma/prisma.service';
import type { Role } from '../auth/roles';

export interface ApiKeyRow {
  id: string;
  name: string;
  role: Role;
  secret_sha256: string;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export interface NewApiKey {
  id: string;
  name: string;
  role: Role;
  secretSha256: string;
  createdBy: string;
  expiresAt: Date | null;
}

const COLUMNS = `"id", "name", "role", "secret_sha256", "created_by", "created_at", "expires_at", "revoked_at", "last_used_at"`;

/** The SQL of API keys. */
@Injectable()
export class ApiKeysRepository {
  constructor(private readonly prisma: PrismaService) {}

  async insert(key: NewApiKey): Promise<ApiKeyRow> {
    const rows = await this.prisma.$queryRawUnsafe<ApiKeyRow[]>(
      `INSERT INTO "api_keys" ("id", "name", "role", "secret_sha256", "created_by", "expires_at") VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      key.id,
      key.name,
      key.role,
      key.secretSha256,
      key.createdBy,
      key.expiresAt,
    );
    return rows[0]!;
  }

  /** Insert only while the table is empty (first start); undefined when a key exists already. */
  async insertFirst(key: NewApiKey): Promise<ApiKeyRow | undefined> {
    const rows = await this.prisma.$queryRawUnsafe<ApiKeyRow[]>(
      `INSERT INTO "api_keys" ("id", "name", "role", "secret_sha256", "created_by", "expires_at")
       SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM "api_keys") RETURNING ${COLUMNS}`,
      key.id,
      key.name,
      key.role,
      key.secretSha256,
      key.createdBy,
      key.expiresAt,
    );
    return rows[0];
  }

  async find(id: string): Promise<ApiKeyRow | undefined> {
    const rows = await this.prisma.$queryRawUnsafe<ApiKeyRow[]>(`SELECT ${COLUMNS} FROM "api_keys" WHERE "id" = $1`, id);
    return rows[0];
  }

  list(): Promise<ApiKeyRow[]> {
    return this.prisma.$queryRawUnsafe<ApiKeyRow[]>(`SELECT ${COLUMNS} FROM "api_keys" ORDER BY "created_at", "id"`);
  }

  async revoke(id: string, by: string): Promise<ApiKeyRow | undefined> {
    const rows = await this.prisma.$queryRawUnsafe<ApiKeyRow[]>(
      `UPDATE "api_keys" SET "revoked_at" = COALESCE("revoked_at", now()), "revoked_by" = COALESCE("revoked_by", $2) WHERE "id" = $1 RETURNING ${COLUMNS}`,
      id,
      by,
    );
    return rows[0];
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.prisma.$executeRawUnsafe(`UPDATE "api_keys" SET "last_used_at" = $2 WHERE "id" = $1`, id, at);
  }
}
