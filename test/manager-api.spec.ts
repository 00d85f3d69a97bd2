import { randomBytes } from 'node:crypto';
import { RetentionService } from '@shelfsight/hub';
import type { DatabaseKind } from './support/databases';
import { detection, FakeDevice } from './support/fake-device';
import { hasExternalPostgres } from './support/services';
import { getJson, hubFetch, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

interface Inventory {
  totalLocations: number;
  staleLocations: number;
  staleAfterS: number;
  newestObservation: string | null;
  categories: Array<{ category: string; locations: number; newestObservation: string }>;
}

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`manager API (${variant.db})`, () => {
    let sut: TestHub;
    let device: FakeDevice;
    const s1 = `s1-${randomBytes(3).toString('hex')}`;
    const s2 = `s2-${randomBytes(3).toString('hex')}`;
    const api = (path: string) => `${sut.hub.httpUrl}${path}`;
    const counts = async (query: string) => {
      const inv = (await getJson<Inventory>(api(`/inventory?${query}`))).body;
      return Object.fromEntries(inv.categories.map((c) => [c.category, c.locations]));
    };

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes', { STALE_AFTER_S: '3600', DETECTION_RETENTION_DAYS: '30' });
      device = await FakeDevice.connect(sut.hub.mqttUrl, `dev-${randomBytes(3).toString('hex')}`);
      await device.sendDetections([
        detection(1, { site: s1, location: 'A-01-1-A', category: 'milk', confidence: 0.9, capturedAt: minutesAgo(10) }),
        detection(2, { site: s1, location: 'A-01-1-B', category: 'milk', confidence: 0.7, capturedAt: minutesAgo(10) }),
        detection(3, { site: s1, location: 'B-01-1-A', category: 'apples', confidence: 0.9, capturedAt: minutesAgo(180) }),
        detection(4, { site: s2, location: 'A-01-1-A', category: 'juice', confidence: 0.9, capturedAt: minutesAgo(5) }),
      ]);
      await device.waitForAcks([1, 2, 3, 4]);
    });

    afterAll(async () => {
      await device?.close();
      await sut?.stop();
    });

    it('counts per category with site, zone, category, confidence and staleness filters', async () => {
      const inv = (await getJson<Inventory>(api(`/inventory?site=${s1}`))).body;
      expect(inv.categories.map((c) => [c.category, c.locations])).toEqual([['milk', 2]]);
      expect(inv.staleLocations).toBe(1);
      expect(inv.staleAfterS).toBe(3600);
      expect(await counts(`site=${s1}&includeStale=true`)).toEqual({ apples: 1, milk: 2 });
      expect(await counts(`site=${s1}&minConfidence=0.8`)).toEqual({ milk: 1 });
      expect(await counts(`site=${s1}&zone=B&includeStale=true`)).toEqual({ apples: 1 });
      expect(await counts(`site=${s1}&category=milk`)).toEqual({ milk: 2 });
      expect(await counts(`includeStale=true`)).toMatchObject({ apples: 1, juice: 1, milk: 2 });
    });

    it('serves the same counts as CSV', async () => {
      const res = await hubFetch(api(`/inventory.csv?site=${s1}&includeStale=true`));
      expect(res.headers.get('content-type')).toMatch(/text\/csv/);
      const lines = (await res.text()).trim().split('\n');
      expect(lines[0]).toBe('category,locations,newest_observation,oldest_observation');
      expect(lines.slice(1).map((l) => l.split(',').slice(0, 2).join(','))).toEqual(['apples,1', 'milk,2']);
    });

    it('answers history per hour from the recorded state changes, and draws it', async () => {
      // A-01-1-A moves from milk to juice five minutes ago.
      await device.sendDetections([detection(5, { site: s1, location: 'A-01-1-A', category: 'juice', capturedAt: minutesAgo(5) })]);
      await device.waitForAcks([5]);
      const from = new Date(Date.now() - 4 * 3600_000).toISOString();
      const res = await getJson<{ points: Array<{ time: string; counts: Record<string, number> }>; categories: string[] }>(
        api(`/inventory/history?site=${s1}&from=${from}&bucket=hour`),
      );
      expect(res.status).toBe(200);
      expect(res.body.categories).toEqual(['apples', 'juice', 'milk']);
      const points = res.body.points;
      expect(points.length).toBeGreaterThanOrEqual(4);
      expect(points[0]!.counts).toEqual({ apples: 0, juice: 0, milk: 0 });
      expect(points[points.length - 1]!.counts).toEqual({ apples: 1, juice: 1, milk: 1 });
      const svg = await hubFetch(api(`/inventory/history.svg?site=${s1}&from=${from}`));
      expect(svg.headers.get('content-type')).toMatch(/image\/svg\+xml/);
      const text = await svg.text();
      expect(text).toContain('<polyline');
      expect(text).toContain('juice');
    });

    it('lists locations with their state, paginated, and shows one with its recent history', async () => {
      type Page = { items: Array<{ code: string; stale: boolean; state: { category: string } | null }>; nextCursor: string | null };
      const first = (await getJson<Page>(api(`/locations?site=${s1}&limit=2`))).body;
      expect(first.items.map((l) => l.code)).toEqual(['A-01-1-A', 'A-01-1-B']);
      expect(first.nextCursor).not.toBeNull();
      const second = (await getJson<Page>(api(`/locations?site=${s1}&limit=2&cursor=${first.nextCursor}`))).body;
      expect(second.items.map((l) => [l.code, l.stale, l.state?.category])).toEqual([['B-01-1-A', true, 'apples']]);
      expect(second.nextCursor).toBeNull();

      const ambiguous = await getJson<{ message: string[] }>(api('/locations/A-01-1-A'));
      expect(ambiguous.status).toBe(400);
      expect(ambiguous.body.message[0]).toMatch(/^site:/);
      const detail = (
        await getJson<{ state: { category: string }; history: Array<{ category: string }> }>(api(`/locations/A-01-1-A?site=${s1}`))
      ).body;
      expect(detail.state.category).toBe('juice');
      expect(detail.history.map((h) => h.category)).toEqual(['juice', 'milk']);
      expect((await getJson(api(`/locations/Z-99-9-Z?site=${s1}`))).status).toBe(404);
      expect((await getJson<{ message: string[] }>(api('/locations/not-a-code'))).body.message[0]).toMatch(/^code:/);
    });

    it('pages through detections with a cursor, newest first, without gaps or repeats', async () => {
      type Page = { items: Array<{ seq: number }>; nextCursor: string | null };
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const page: Page = (await getJson<Page>(api(`/detections?site=${s1}&limit=2${cursor ? `&cursor=${cursor}` : ''}`))).body;
        seen.push(...page.items.map((i) => i.seq));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual([5, 3, 2, 1]);
      const filtered = (await getJson<Page>(api(`/detections?site=${s1}&category=milk`))).body;
      expect(filtered.items.map((i) => i.seq)).toEqual([2, 1]);
    });

    it('answers 400 naming the bad parameter', async () => {
      const cases: Array<[string, RegExp]> = [
        ['/inventory?minConfidence=2', /^minConfidence:/],
        ['/inventory?includeStale=maybe', /^includeStale:/],
        ['/inventory?zone=a-1', /^zone:/],
        ['/inventory/history?bucket=week', /^bucket:/],
        ['/inventory/history?from=yesterday', /^from:/],
        ['/inventory/history?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', /^from:/],
        ['/detections?limit=0', /^limit:/],
        ['/detections?cursor=%21%21', /^cursor:/],
        ['/locations?stale=perhaps', /^stale:/],
      ];
      for (const [path, pattern] of cases) {
        const res = await getJson<{ message: string[] }>(api(path));
        expect([path, res.status]).toEqual([path, 400]);
        expect(res.body.message[0]).toMatch(pattern);
      }
    });

    it('retention keeps raw detections younger than DETECTION_RETENTION_DAYS', async () => {
      const seqs = async (site: string) => (await getJson<{ items: Array<{ seq: number }> }>(api(`/detections?site=${site}`))).body.items.map((i) => i.seq);
      const before = { s1: await seqs(s1), s2: await seqs(s2) };
      expect(before).toEqual({ s1: [5, 3, 2, 1], s2: [4] });
      const retention = sut.hub.app.get(RetentionService);
      // Ten days on, with 30 days of retention: nothing is old enough to go.
      expect(await retention.runOnce(new Date(Date.now() + 10 * 86400_000))).toBe(0);
      expect({ s1: await seqs(s1), s2: await seqs(s2) }).toEqual(before);
    });

    it('retention deletes old raw detections but keeps inventory and history', async () => {
      const before = await counts(`site=${s1}&includeStale=true`);
      const retention = sut.hub.app.get(RetentionService);
      const deleted = await retention.runOnce(new Date(Date.now() + 40 * 86400_000));
      expect(deleted).toBe(5);
      const page = (await getJson<{ items: unknown[] }>(api(`/detections?site=${s1}`))).body;
      expect(page.items).toEqual([]);
      expect(await counts(`site=${s1}&includeStale=true`)).toEqual(before);
      const hist = (await getJson<{ points: Array<{ counts: Record<string, number> }> }>(api(`/inventory/history?site=${s1}`))).body;
      expect(hist.points[hist.points.length - 1]!.counts).toEqual({ apples: 1, juice: 1, milk: 1 });
    });
  });
}
