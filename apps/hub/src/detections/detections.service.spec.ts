import type { Detection, Prisma } from '@shelfsight/db';
import { decodeCursor, encodeCursor } from '../common/query-schemas';
import type { PrismaService } from '../prisma/prisma.service';
import type { DetectionsQuery } from './detection.dto';
import { DetectionsService } from './detections.service';

const detection = (id: number, over: Partial<Detection> = {}): Detection =>
  ({
    id: BigInt(id),
    deviceId: 'cam-1',
    epoch: 'e1',
    seq: BigInt(id),
    frameId: `f${id}`,
    site: 's1',
    zone: 'A',
    location: 'A-01-1-A',
    capturedAt: new Date(Date.UTC(2026, 11, 1, 0, id)),
    receivedAt: new Date(Date.UTC(2026, 11, 1, 0, id, 1)),
    category: 'milk',
    confidence: 0.9,
    topK: [],
    modelVersion: 'm1',
    latencyMs: 3,
    misclassified: false,
    disputedAt: null,
    ...over,
  }) as Detection;

/** `prisma.detection.findMany` over rows in memory, honouring the id bound, order and take; the last where is kept. */
class FakeDetections {
  rows: Detection[] = [];
  lastWhere?: Prisma.DetectionWhereInput;

  readonly detection = {
    findMany: ({ where, take }: { where: Prisma.DetectionWhereInput; orderBy: unknown; take: number }) => {
      this.lastWhere = where;
      const lt = (where.id as { lt?: bigint } | undefined)?.lt;
      return Promise.resolve(
        this.rows
          .filter((r) => lt === undefined || r.id < lt)
          .sort((a, b) => Number(b.id - a.id))
          .slice(0, take),
      );
    },
  };
}

describe(DetectionsService.name, () => {
  let db: FakeDetections;
  let sut: DetectionsService;

  beforeEach(() => {
    db = new FakeDetections();
    db.rows = Array.from({ length: 5 }, (_, i) => detection(i + 1));
    sut = new DetectionsService(db as unknown as PrismaService);
  });

  it('pages newest first: a cursor after the last item while more remain, none on the last page', async () => {
    const first = await sut.list({ limit: 2 } as DetectionsQuery);
    expect(first.items.map((d) => d.id)).toEqual(['5', '4']);
    expect(decodeCursor(first.nextCursor!)).toBe(4n);
    const rest = await sut.list({ limit: 3, cursor: first.nextCursor! } as DetectionsQuery);
    expect(rest.items.map((d) => d.id)).toEqual(['3', '2', '1']);
    expect(rest.nextCursor).toBeNull();
  });

  it('filters by what the query names only, with a half-open capture interval', async () => {
    const from = new Date('2026-12-01T00:00:00Z');
    const to = new Date('2026-12-02T00:00:00Z');
    await sut.list({ limit: 10, site: 's1', device: 'cam-1', from, to, cursor: encodeCursor(9n) } as DetectionsQuery);
    expect(db.lastWhere).toEqual({ site: 's1', deviceId: 'cam-1', capturedAt: { gte: from, lt: to }, id: { lt: 9n } });
    await sut.list({ limit: 10, to } as DetectionsQuery);
    expect(db.lastWhere).toEqual({ capturedAt: { lt: to } });
  });
});
