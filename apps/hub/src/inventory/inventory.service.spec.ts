import type { HubConfig } from '../config/hub-config';
import type { HistoryQuery, InventoryQuery } from './inventory.dto';
import type { InventoryRepository } from './inventory.repository';
import { InventoryService } from './inventory.service';

type CountRow = Awaited<ReturnType<InventoryRepository['counts']>>[number];

/** Answers as the repository would; records the freshness cut-off each count was asked with. */
class FakeInventory implements Pick<InventoryRepository, 'counts' | 'staleCount' | 'history'> {
  rows: CountRow[] = [];
  stale = 0;
  history_: Array<{ t: Date; category: string; locations: number }> = [];
  readonly asked: Array<{ freshSince: Date | undefined; minConfidence: number | undefined }> = [];
  readonly staleAsked: Date[] = [];

  counts(_scope: unknown, minConfidence: number | undefined, freshSince: Date | undefined): Promise<CountRow[]> {
    this.asked.push({ freshSince, minConfidence });
    return Promise.resolve(this.rows);
  }

  staleCount(_scope: unknown, freshSince: Date): Promise<number> {
    this.staleAsked.push(freshSince);
    return Promise.resolve(this.stale);
  }

  history(): Promise<Array<{ t: Date; category: string; locations: number }>> {
    return Promise.resolve(this.history_);
  }
}

const at = (iso: string) => new Date(iso);

describe(InventoryService.name, () => {
  const now = at('2026-12-01T12:00:00Z');
  let repo: FakeInventory;
  let sut: InventoryService;

  beforeEach(() => {
    repo = new FakeInventory();
    sut = new InventoryService(repo as unknown as InventoryRepository, { staleAfterS: 600 } as HubConfig);
  });

  it('counts fresh locations only (cut-off STALE_AFTER_S before now), with stale ones counted apart', async () => {
    repo.rows = [
      { category: 'milk', locations: 3, newest: at('2026-12-01T11:58:00Z'), oldest: at('2026-12-01T11:51:00Z') },
      { category: 'bread', locations: 2, newest: at('2026-12-01T11:59:00Z'), oldest: at('2026-12-01T11:55:00Z') },
    ];
    repo.stale = 4;
    const inv = await sut.counts({ site: 's1', minConfidence: 0.7 } as InventoryQuery, now);
    expect(repo.asked).toEqual([{ freshSince: at('2026-12-01T11:50:00Z'), minConfidence: 0.7 }]);
    expect(repo.staleAsked).toEqual([at('2026-12-01T11:50:00Z')]);
    expect(inv).toMatchObject({
      site: 's1',
      zone: null,
      generatedAt: '2026-12-01T12:00:00.000Z',
      newestObservation: '2026-12-01T11:59:00.000Z',
      totalLocations: 5,
      staleLocations: 4,
      staleAfterS: 600,
    });
  });

  it('counts stale locations too when asked to include them', async () => {
    await sut.counts({ includeStale: true } as InventoryQuery, now);
    expect(repo.asked[0]!.freshSince).toBeUndefined();
  });

  it('has no newest observation when nothing is counted', async () => {
    expect(await sut.counts({} as InventoryQuery, now)).toMatchObject({ newestObservation: null, totalLocations: 0, categories: [] });
  });

  it('groups the history by time, one point per bucket with every category seen in it', async () => {
    repo.history_ = [
      { t: at('2026-12-01T10:00:00Z'), category: 'milk', locations: 3 },
      { t: at('2026-12-01T10:00:00Z'), category: 'bread', locations: 1 },
      { t: at('2026-12-01T11:00:00Z'), category: 'milk', locations: 2 },
    ];
    const h = await sut.history({ from: at('2026-12-01T10:00:00Z'), to: at('2026-12-01T12:00:00Z'), bucket: 'hour' } as HistoryQuery);
    expect(h.categories).toEqual(['bread', 'milk']);
    expect(h.points).toEqual([
      { time: '2026-12-01T10:00:00.000Z', counts: { milk: 3, bread: 1 } },
      { time: '2026-12-01T11:00:00.000Z', counts: { milk: 2 } },
    ]);
  });

  it('quotes CSV fields that hold a comma or a quote', async () => {
    repo.rows = [{ category: 'milk, "whole"', locations: 1, newest: at('2026-12-01T11:59:00Z'), oldest: at('2026-12-01T11:59:00Z') }];
    expect(await sut.csv({} as InventoryQuery)).toBe(
      'category,locations,newest_observation,oldest_observation\n"milk, ""whole""",1,2026-12-01T11:59:00.000Z,2026-12-01T11:59:00.000Z\n',
    );
  });
});
