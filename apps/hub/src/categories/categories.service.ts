import { Injectable } from '@nestjs/common';
import { CategoriesRepository, type CategoryRow } from './categories.repository';
import { CategoryNotFoundError, InactiveCategoryError } from './categories.error';
import type { CategoryDto, CategoryListDto, NewCategory } from './category.dto';

/** The category catalogue: labels and corrections must name an active category. */
@Injectable()
export class CategoriesService {
  constructor(private readonly repo: CategoriesRepository) {}

  async list(): Promise<CategoryListDto> {
    return { items: (await this.repo.list()).map(toDto) };
  }

  async add(c: NewCategory): Promise<CategoryDto> {
    return toDto(await this.repo.upsert(c.name, c.displayName ?? null));
  }

  async retire(name: string, now = new Date()): Promise<CategoryDto> {
    const row = await this.repo.retire(name, now);
    if (!row) throw new CategoryNotFoundError(name);
    return toDto(row);
  }

  /** Throws a 400 unless `name` is a known, active category. */
  async assertActive(name: string): Promise<void> {
    const row = await this.repo.get(name);
    if (!row || row.retired_at) throw new InactiveCategoryError(name, row !== undefined);
  }
}

function toDto(r: CategoryRow): CategoryDto {
  return {
    name: r.name,
    displayName: r.display_name,
    createdAt: r.created_at.toISOString(),
    retiredAt: r.retired_at?.toISOString() ?? null,
    active: r.retired_at === null,
  };
}
