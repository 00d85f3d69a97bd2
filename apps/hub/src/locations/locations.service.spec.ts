import type { Detection } from '@shelfsight/db';
import { decodeCursor } from '../common/query-schemas';
import type { HubConfig } from '../config/hub-config';
import type { CorrectionRow } from '../corrections/correction.dto';
import type { CorrectionsRepository } from '../corrections/corrections.repository';
import type { DisputesRepository } from '../disputes/disputes.repository';
import type { PrismaService } from '../prisma/prisma.service';
import type { LocationQuery, LocationsQuery } from './location.dto';
import { AmbiguousLocationError, LocationNotFoundError } from './locations.error';
import { LocationsService, type LocationRow } from './locations.service';

type DisputedRow = Awaited<ReturnType<DisputesRepository['disputedAt']>>[number];

const location = (rn: number, site: string, code: string, lastObserved: string, category: string | null = 'milk'): LocationRow => ({
  rn: BigInt(rn),
  site,
  code,
  zone: 'A',
  first_seen_at: new Date('2026-11-01T00:00:00Z'),
  last_observed_at: new Date(lastObserved),
  category,
  confidence: category ? 0.9 : null,
  captured_at: category ? new Date(lastObserved) : null,
  device_id: category ? 'cam-1' : null,
});

/**
 * The SQL the service runs today (a later pass moves it to a repository): `$queryRaw` answers
 * the rows the test sets (the filtering is SQL's, covered by integration tests), and
 * `detection.findMany` the location's history.
 */
class FakeLocationTables {
  rows: LocationRow[] = [];
  history: Detection[] = [];
  $queryRaw = (): Promise<LocationRow[]> => Promise.resolve(this.rows);
  readonly detection = { findMany: () => Promise.resolve(this.history) };
}

describe(LocationsService.name, () => {
  const now = new Date('2026-12-01T12:00:00Z');
  let db: FakeLocationTables;
  let disputed: DisputedRow[];
  let sut: LocationsService;

  beforeEach(() => {
    db = new FakeLocationTables();
    disputed = [];
    const disputes: Pick<DisputesRepository, 'disputedAt'> = { disputedAt: () => Promise.resolve(disputed) };
    const corrections: Pick<CorrectionsRepository, 'forDetections'> = { forDetections: (): Promise<CorrectionRow[]> => Promise.resolve([]) };
    sut = new LocationsService(db as unknown as PrismaService, { staleAfterS: 600 } as HubConfig, disputes as DisputesRepository, corrections as CorrectionsRepository);
  });

  it('marks a location stale when it was last observed before STALE_AFTER_S, and has no state when never classified', async () => {
    db.rows = [location(1, 's1', 'A-01-1-A', '2026-12-01T11:55:00Z'), location(2, 's1', 'A-01-1-B', '2026-12-01T11:49:59Z', null)];
    const page = await sut.list({ limit: 10 } as LocationsQuery, now);
    expect(page.items.map((l) => [l.code, l.stale])).toEqual([
      ['A-01-1-A', false],
      ['A-01-1-B', true],
    ]);
    expect(page.items[0]!.state).toEqual({ category: 'milk', confidence: 0.9, capturedAt: '2026-12-01T11:55:00.000Z', deviceId: 'cam-1' });
    expect(page.items[1]!.state).toBeNull();
    expect(page.nextCursor).toBeNull();
  });

  it('gives a cursor at the last row number of a full page (the query fetches one more than the limit)', async () => {
    db.rows = [1, 2, 3].map((n) => location(n, 's1', `A-01-1-${n}`, '2026-12-01T11:55:00Z'));
    const page = await sut.list({ limit: 2 } as LocationsQuery, now);
    expect(page.items).toHaveLength(2);
    expect(decodeCursor(page.nextCursor!)).toBe(2n);
  });

  it('answers 404 for an unknown code, and 400 naming the sites when a code exists in several and no site is given', async () => {
    await expect(sut.get('Z-01-1-A', { history: 5 } as LocationQuery, now)).rejects.toThrow(LocationNotFoundError);
    db.rows = [location(0, 's1', 'A-01-1-A', '2026-12-01T11:55:00Z'), location(0, 's2', 'A-01-1-A', '2026-12-01T11:55:00Z')];
    const err = await sut.get('A-01-1-A', { history: 5 } as LocationQuery, now).catch((e: AmbiguousLocationError) => e);
    expect(err).toBeInstanceOf(AmbiguousLocationError);
    expect(JSON.stringify((err as AmbiguousLocationError).getResponse())).toMatch(/several sites \(s1, s2\)/);
  });

  it('reports the newest dispute only: the disputed detections within a minute of the newest one', async () => {
    db.rows = [location(0, 's1', 'A-01-1-A', '2026-12-01T11:55:00Z')];
    const d = (id: number, device: string, category: string, at: string): DisputedRow =>
      ({ id: BigInt(id), device_id: device, frame_id: `f${id}`, category, confidence: 0.9, captured_at: new Date(at), disputed_at: new Date(at) }) as DisputedRow;
    disputed = [d(3, 'cam-2', 'milk', '2026-12-01T11:50:30Z'), d(2, 'cam-1', 'bread', '2026-12-01T11:50:00Z'), d(1, 'cam-1', 'juice', '2026-12-01T10:00:00Z')];
    const detail = await sut.get('A-01-1-A', { history: 5 } as LocationQuery, now);
    expect(detail.dispute).toEqual({ disputedAt: '2026-12-01T11:50:30.000Z', categories: ['bread', 'milk'], devices: ['cam-1', 'cam-2'], detectionIds: ['3', '2'] });
    disputed = [];
    expect((await sut.get('A-01-1-A', { history: 5 } as LocationQuery, now)).dispute).toBeNull();
  });
});
