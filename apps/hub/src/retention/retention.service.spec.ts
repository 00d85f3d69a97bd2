import { Logger } from '@nestjs/common';
import type { HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import type { PrismaService } from '../prisma/prisma.service';
import { RetentionService } from './retention.service';

/**
 * The one statement the service runs (`$executeRaw`, a chunked DELETE) at its boundary:
 * each call deletes the next count of `chunks` (0 when none is left), or throws `failAt`'s error.
 */
class FakeDetectionsTable {
  chunks: number[] = [];
  readonly cutoffs: Date[] = [];
  failAt?: number;
  calls = 0;

  $executeRaw = (_sql: TemplateStringsArray, ...values: unknown[]): Promise<number> => {
    this.calls++;
    this.cutoffs.push(values[0] as Date);
    if (this.failAt === this.calls) return Promise.reject(new Error('connection reset'));
    return Promise.resolve(this.chunks.shift() ?? 0);
  };
}

describe(RetentionService.name, () => {
  const now = new Date('2026-12-08T00:00:00Z');
  let table: FakeDetectionsTable;
  let metrics: HubMetrics;
  let warned: string[];
  const make = (retentionDays: number) => new RetentionService(table as unknown as PrismaService, metrics, { retentionDays } as HubConfig);

  beforeEach(() => {
    table = new FakeDetectionsTable();
    metrics = new HubMetrics();
    warned = [];
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((m: unknown) => void warned.push(String(m)));
  });

  it('deletes in chunks until a chunk comes back short, with the cut-off DETECTION_RETENTION_DAYS before now, and counts them', async () => {
    table.chunks = [10_000, 10_000, 3];
    expect(await make(7).runOnce(now)).toBe(20_003);
    expect(table.calls).toBe(3);
    expect(table.cutoffs[0]).toEqual(new Date('2026-12-01T00:00:00Z'));
    expect(await metrics.registry.metrics()).toMatch(/^shelfsight_\w*retention\w*_total 20003$/m);
  });

  it('deletes nothing when retention is off (0 days)', async () => {
    table.chunks = [5];
    expect(await make(0).runOnce(now)).toBe(0);
    expect(table.calls).toBe(0);
  });

  it('runs one purge at a time: a second call while one runs gets the same result', async () => {
    table.chunks = [4];
    const sut = make(7);
    const [a, b] = await Promise.all([sut.runOnce(now), sut.runOnce(now)]);
    expect([a, b]).toEqual([4, 4]);
    expect(table.calls).toBe(1);
  });

  it('logs a failed run and reports what it deleted before the failure, never throwing', async () => {
    table.chunks = [10_000, 10_000];
    table.failAt = 2;
    expect(await make(7).runOnce(now)).toBe(10_000);
    expect(warned).toEqual([expect.stringMatching(/retention run failed: connection reset/)]);
  });

  it('purges nothing once the hub is stopping', async () => {
    const sut = make(7);
    await sut.onModuleDestroy();
    table.chunks = [5];
    expect(await sut.runOnce(now)).toBe(0);
    expect(table.calls).toBe(0);
  });
});
