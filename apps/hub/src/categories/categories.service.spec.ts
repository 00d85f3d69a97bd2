import { CategoriesRepository, type CategoryRow } from './categories.repository';
import { CategoryNotFoundError, InactiveCategoryError } from './categories.error';
import { CategoriesService } from './categories.service';

/** The 400's message, as the client reads it. */
const refusal = (p: Promise<unknown>) => p.then(() => 'accepted', (e: InactiveCategoryError) => JSON.stringify(e.getResponse()));

/** The catalogue table at its boundary: rows by name. */
class FakeCategories implements Pick<CategoriesRepository, 'list' | 'get' | 'upsert' | 'retire'> {
  readonly rows = new Map<string, CategoryRow>();

  list(): Promise<CategoryRow[]> {
    return Promise.resolve([...this.rows.values()]);
  }

  get(name: string): Promise<CategoryRow | undefined> {
    return Promise.resolve(this.rows.get(name));
  }

  upsert(name: string, displayName: string | null): Promise<CategoryRow> {
    const row = { name, display_name: displayName, created_at: this.rows.get(name)?.created_at ?? new Date('2026-12-01T00:00:00Z'), retired_at: null };
    this.rows.set(name, row);
    return Promise.resolve(row);
  }

  retire(name: string, at: Date): Promise<CategoryRow | undefined> {
    const row = this.rows.get(name);
    if (row) row.retired_at ??= at;
    return Promise.resolve(row);
  }
}

describe(CategoriesService.name, () => {
  let repo: FakeCategories;
  let sut: CategoriesService;

  beforeEach(() => {
    repo = new FakeCategories();
    sut = new CategoriesService(repo as unknown as CategoriesRepository);
  });

  it('adds a category as active, with no display name unless given', async () => {
    expect(await sut.add({ name: 'milk' })).toEqual({ name: 'milk', displayName: null, createdAt: '2026-12-01T00:00:00.000Z', retiredAt: null, active: true });
    expect((await sut.list()).items.map((c) => c.name)).toEqual(['milk']);
  });

  it('retires a category at the given time, after which labels naming it are refused as retired', async () => {
    await sut.add({ name: 'milk', displayName: 'Milk' });
    const retired = await sut.retire('milk', new Date('2026-12-02T00:00:00Z'));
    expect(retired).toMatchObject({ active: false, retiredAt: '2026-12-02T00:00:00.000Z' });
    await expect(sut.assertActive('milk')).rejects.toThrow(InactiveCategoryError);
    expect(await refusal(sut.assertActive('milk'))).toMatch(/milk is retired/);
  });

  it('refuses an unknown category as unknown, and passes an active one', async () => {
    await sut.add({ name: 'milk' });
    await expect(sut.assertActive('milk')).resolves.toBeUndefined();
    expect(await refusal(sut.assertActive('bread'))).toMatch(/bread is not a known category/);
  });

  it('answers 404 when retiring a category that does not exist', async () => {
    await expect(sut.retire('bread')).rejects.toThrow(CategoryNotFoundError);
  });
});
