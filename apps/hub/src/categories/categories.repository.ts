import { Injectable } from '@nestjs/common';
import { PrismaService } from '../prisma/prisma.service';

export interface CategoryRow {
  name: string;
  display_name: string | null;
  created_at: Date;
  retired_at: Date | null;
}

@Injectable()
export class CategoriesRepository {
  constructor(private readonly prisma: PrismaService) {}

  list(): Promise<CategoryRow[]> {
    return this.prisma.$queryRaw`SELECT name, display_name, created_at, retired_at FROM categories ORDER BY name`;
  }

  async get(name: string): Promise<CategoryRow | undefined> {
    const rows = await this.prisma.$queryRaw<CategoryRow[]>`SELECT name, display_name, created_at, retired_at FROM categories WHERE name = ${name}`;
    return rows[0];
  }

  /** Add a category, or bring a retired one back. */
  async upsert(name: string, displayName: string | null): Promise<CategoryRow> {
    const rows = await this.prisma.$queryRaw<CategoryRow[]>`
      INSERT INTO categories (name, display_name) VALUES (${name}, ${displayName})
      ON CONFLICT (name) DO UPDATE SET retired_at = NULL, display_name = COALESCE(EXCLUDED.display_name, categories.display_name)
      RETURNING name, display_name, created_at, retired_at`;
    return rows[0]!;
  }

  async retire(name: string, at: Date): Promise<CategoryRow | undefined> {
    const rows = await this.prisma.$queryRaw<CategoryRow[]>`
      UPDATE categories SET retired_at = COALESCE(retired_at, ${at}) WHERE name = ${name} RETURNING name, display_name, created_at, retired_at`;
    return rows[0];
  }
}
