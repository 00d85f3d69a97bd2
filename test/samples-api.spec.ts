import { createHash, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { FrameRequest, Sample } from '@shelfsight/contracts';
import { metricSum } from '@shelfsight/common';
import { checkInventoryConsistency } from '@shelfsight/db';
import { BLOB_STORE, DisagreementChecker, SamplePurgeService, SampleWriter, type BlobStore } from '@shelfsight/hub';
import type { DatabaseKind } from './support/databases';
import { detection, FakeDevice } from './support/fake-device';
import { jpegThumbnail, nearby, randomVector, registerTestBackbone, sampleMessage } from './support/samples';
import { hasExternalPostgres } from './support/services';
import { hubFetch, eventually, getJson, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

const DIM = 32;
const BACKBONE = 'test-backbone';

interface SampleJson {
  id: string;
  deviceId: string;
  sampleId: string;
  reason: string;
  frameId: string;
  detectionId: string | null;
  priority: number;
  state: string;
  label: string | null;
  labelledBy: string | null;
  expiresAt: string | null;
  embeddingDim: number | null;
  scored: { category: string; margin: number; entropy: number; confidence: number };
  thumbnail: { url: string; sha256: string; bytes: number };
}
interface Page {
  items: SampleJson[];
  nextCursor: string | null;
}
interface CorrectionJson {
  id: string;
  movedState: boolean;
  previousCategory: string;
  category: string;
  frameStatus: string;
  sampleId: string | null;
  correctedBy: string;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

/** A two-entry top-k with the given top-2 margin. */
function withMargin(margin: number, category = 'milk'): Array<{ category: string; confidence: number }> {
  const top = 0.45 + margin / 2;
  return [
    { category, confidence: top },
    { category: category === 'milk' ? 'juice' : 'milk', confidence: top - margin },
  ];
}

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`sample store and labelling queue (${variant.db})`, () => {
    let sut: TestHub;
    const devices: FakeDevice[] = [];
    const tag = randomBytes(3).toString('hex');
    const siteOf = (name: string) => `${name}-${tag}`;
    const api = (path: string) => `${sut.hub.httpUrl}${path}`;
    const post = async <T>(path: string, body?: unknown): Promise<{ status: number; body: T }> => {
      const res = await hubFetch(api(path), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as T };
    };
    const device = async (name: string) => {
      const dev = await FakeDevice.connect(sut.hub.mqttUrl, `${name}-${tag}`);
      devices.push(dev);
      return dev;
    };
    const send = (dev: FakeDevice, s: Sample) => dev.sendRaw('samples', JSON.stringify(s));
    const metric = async (name: string, labels: Record<string, string> = {}) => metricSum(await (await hubFetch(api('/metrics'))).text(), name, labels);
    const settle = () => sut.hub.app.get(SampleWriter).idle();
    const pending = async (site: string, query = '') => (await getJson<Page>(api(`/samples?site=${site}&limit=500${query}`))).body.items;
    const waitForSamples = (site: string, n: number, query = '') =>
      eventually(async () => {
        const items = await pending(site, query);
        return items.length >= n ? items : undefined;
      }, 15_000, `${n} samples in ${site}`);
    /** Answer frame requests: the held frames as samples, the others not_held. */
    const answering = (dev: FakeDevice, site: string, held: Map<string, Float32Array>) => {
      dev.onFrameRequest = async (req: FrameRequest) => {
        const vector = held.get(req.frameId);
        const reply = vector
          ? { status: 'ok', sample: await sampleMessage(dev.id, { site, frameId: req.frameId, reason: 'requested', requestId: req.requestId, embedding: vector }) }
          : { status: 'not_held', message: 'gone' };
        await dev.sendRaw('frame-reply', JSON.stringify({ v: 1, deviceId: dev.id, requestId: req.requestId, frameId: req.frameId, ...reply }));
      };
    };

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes', { SAMPLES_PER_DEVICE_PER_DAY: '20', SAMPLE_RETENTION_DAYS: '7', DISAGREEMENT_WINDOW_S: '60' });
      await registerTestBackbone(sut.hub.databaseUrl, BACKBONE, DIM);
      for (const name of ['milk', 'juice', 'apples', 'yoghurt']) expect((await post('/categories', { name })).status).toBe(201);
    });

    afterAll(async () => {
      for (const dev of devices) await dev.close();
      await sut?.stop();
    });

    it('stores a sample once, with thumbnail and embedding, and refuses and counts foreign backbones and bad payloads', async () => {
      const site = siteOf('dup');
      const dev = await device('dup');
      const rejected = (reason: string) => metric('shelfsight_samples_rejected_total', { reason });
      const before = {
        dup: await metric('shelfsight_samples_duplicate_total'),
        backbone: await rejected('unknown_backbone'),
        dim: await rejected('dimension_mismatch'),
        json: await rejected('invalid_json'),
        schema: await rejected('schema'),
      };
      const s = await sampleMessage(dev.id, { site, embedding: randomVector(DIM, 1) });
      await send(dev, s);
      await send(dev, s);
      await send(dev, await sampleMessage(dev.id, { site, backboneId: 'nobody-has-this' }));
      await dev.sendRaw('samples', 'not json');
      await dev.sendRaw('samples', JSON.stringify({ v: 1, deviceId: dev.id }));
      await send(dev, await sampleMessage(dev.id, { site, embedding: randomVector(DIM + 1, 2) }));
      await eventually(async () => ((await rejected('dimension_mismatch')) > before.dim ? true : undefined), 15_000, 'dimension rejection');
      await settle();
      expect((await rejected('unknown_backbone')) - before.backbone).toBe(1);
      expect((await rejected('invalid_json')) - before.json).toBe(1);
      expect((await rejected('schema')) - before.schema).toBe(1);
      expect((await metric('shelfsight_samples_duplicate_total')) - before.dup).toBe(1);
      const items = await pending(site);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ deviceId: dev.id, sampleId: s.sampleId, reason: 'low_confidence', state: 'pending', embeddingDim: DIM });
      expect(new Date(items[0]!.expiresAt!).getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);
      const metricsText = await (await hubFetch(api('/metrics'))).text();
      expect(metricsText).toMatch(/shelfsight_samples_rejected_total\{reason="unknown_backbone"\} 1/);
    });

    it('holds the per-device daily quota on the hub', async () => {
      const site = siteOf('quota');
      const dev = await device('quota');
      const quota = () => metric('shelfsight_samples_rejected_total', { reason: 'quota' });
      const before = await quota();
      for (let i = 0; i < 22; i++) await send(dev, await sampleMessage(dev.id, { site }));
      await eventually(async () => ((await quota()) - before >= 2 ? true : undefined), 15_000, 'quota rejections');
      await settle();
      expect(await pending(site)).toHaveLength(20);
      expect((await quota()) - before).toBe(2);
    });

    it('orders the queue by margin, entropy, newest and diverse, pages without repeats, and finds the true nearest neighbours', async () => {
      const site = siteOf('queue');
      const dev = await device('queue');
      const base = randomVector(DIM, 100);
      const vectors = new Map<string, Float32Array>();
      // Ten near-identical frames of one shelf (the least sure), four distinct frames.
      for (let i = 0; i < 10; i++) {
        const v = nearby(base, 200 + i);
        const s = await sampleMessage(dev.id, { site, topK: withMargin(0.01 + i * 0.01), embedding: v });
        vectors.set(s.sampleId, v);
        await send(dev, s);
      }
      for (let i = 0; i < 4; i++) {
        const v = randomVector(DIM, 300 + i);
        const s = await sampleMessage(dev.id, { site, topK: withMargin(0.2 + i * 0.1, 'juice'), embedding: v });
        vectors.set(s.sampleId, v);
        await send(dev, s);
      }
      await waitForSamples(site, 14);

      const walk = async (order: string) => {
        const seen: SampleJson[] = [];
        let cursor: string | null = null;
        do {
          const page: Page = (await getJson<Page>(api(`/samples?site=${site}&order=${order}&limit=4${cursor ? `&cursor=${cursor}` : ''}`))).body;
          seen.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor);
        return seen;
      };
      const byMargin = await walk('margin');
      expect(byMargin).toHaveLength(14);
      expect(new Set(byMargin.map((s) => s.id)).size).toBe(14);
      const margins = byMargin.map((s) => s.scored.margin);
      expect(margins).toEqual([...margins].sort((a, b) => a - b));
      const byEntropy = await walk('entropy');
      expect(new Set(byEntropy.map((s) => s.id)).size).toBe(14);
      const entropies = byEntropy.map((s) => s.scored.entropy);
      expect(entropies).toEqual([...entropies].sort((a, b) => b - a));
      const newest = await walk('newest');
      expect(newest.map((s) => BigInt(s.id))).toEqual(newest.map((s) => BigInt(s.id)).sort((a, b) => (a > b ? -1 : 1)));

      const clusterIds = new Set(byMargin.slice(0, 10).map((s) => s.id));
      const marginFirst = (await getJson<Page>(api(`/samples?site=${site}&order=margin&limit=5`))).body.items;
      expect(marginFirst.every((s) => clusterIds.has(s.id))).toBe(true);
      const diverse = (await getJson<Page>(api(`/samples?site=${site}&order=diverse&limit=5`))).body;
      expect(diverse.items.filter((s) => clusterIds.has(s.id))).toHaveLength(1);
      expect(diverse.items[0]!.id).toBe(byMargin[0]!.id);
      const diverseRest = (await getJson<Page>(api(`/samples?site=${site}&order=diverse&limit=5&cursor=${diverse.nextCursor}`))).body.items;
      expect(new Set([...diverse.items, ...diverseRest].map((s) => s.id)).size).toBe(10);

      // Similar: the true nearest by cosine among everything stored for this backbone.
      const query = byMargin[3]!;
      const qv = vectors.get(query.sampleId)!;
      const truth = [...vectors.entries()]
        .filter(([sid]) => sid !== query.sampleId)
        .map(([sid, v]) => ({ sid, sim: cosine(qv, v) }))
        .sort((a, b) => b.sim - a.sim)
        .slice(0, 5);
      const similar = (await getJson<{ items: Array<SampleJson & { similarity: number }> }>(api(`/samples/${query.id}/similar?limit=5`))).body.items;
      expect(similar.map((s) => s.sampleId)).toEqual(truth.map((t) => t.sid));
      for (let i = 0; i < 5; i++) expect(similar[i]!.similarity).toBeCloseTo(truth[i]!.sim, 4);
      expect((await getJson(api('/samples/999999999/similar'))).status).toBe(404);
    });

    it('labels, relabels, skips and bulk-labels; refuses retired and unknown categories; serves the thumbnail with caching headers', async () => {
      const site = siteOf('label');
      const dev = await device('label');
      for (let i = 0; i < 6; i++) await send(dev, await sampleMessage(dev.id, { site, topK: withMargin(0.05 * (i + 1)) }));
      const items = await waitForSamples(site, 6);
      const [a, b, c, ...rest] = items as [SampleJson, SampleJson, SampleJson, ...SampleJson[]];

      expect((await post<SampleJson>(`/samples/${a.id}/label`, { category: 'milk' })).body).toMatchObject({ state: 'labelled', label: 'milk', labelledBy: 'key:bootstrap', expiresAt: null });
      expect((await post<SampleJson>(`/samples/${a.id}/label`, { category: 'juice' })).body).toMatchObject({ state: 'labelled', label: 'juice' });
      expect((await post<SampleJson>(`/samples/${b.id}/skip`)).body).toMatchObject({ state: 'skipped', label: null });
      // Undo (the console's `u`): a skipped or labelled sample goes back to the queue, unlabelled, expiring again.
      const requeued = await post<SampleJson>(`/samples/${b.id}/requeue`);
      expect(requeued.body).toMatchObject({ state: 'pending', label: null, labelledBy: null });
      expect(requeued.body.expiresAt).not.toBeNull();
      expect((await pending(site)).map((s) => s.id)).toContain(b.id);
      expect((await post<SampleJson>(`/samples/${b.id}/label`, { category: 'milk' })).body).toMatchObject({ state: 'labelled', expiresAt: null });
      expect((await post<SampleJson>(`/samples/${b.id}/requeue`)).body).toMatchObject({ state: 'pending', label: null });
      expect((await post(`/samples/999999999/requeue`)).status).toBe(404);
      expect((await post<SampleJson>(`/samples/${b.id}/skip`)).body).toMatchObject({ state: 'skipped', label: null });
      expect((await post(`/categories/yoghurt/retire`)).status).toBe(200);
      const retired = await post<{ message: string[] }>(`/samples/${c.id}/label`, { category: 'yoghurt' });
      expect(retired.status).toBe(400);
      expect(retired.body.message[0]).toMatch(/^category: yoghurt is retired/);
      expect((await post<{ message: string[] }>(`/samples/${c.id}/label`, { category: 'caviar' })).status).toBe(400);
      expect((await post(`/samples/${c.id}/label`, {})).status).toBe(400);
      expect((await post('/samples/999999999/label', { category: 'milk' })).status).toBe(404);
      const categories = (await getJson<{ items: Array<{ name: string; active: boolean }> }>(api('/categories'))).body.items;
      expect(categories.find((x) => x.name === 'yoghurt')?.active).toBe(false);

      const bulk = await post<{ labelled: string[]; missing: string[] }>('/samples/labels', { ids: [c.id, ...rest.map((r) => r.id), '999999998'], category: 'apples' });
      expect(bulk.status).toBe(200);
      expect(bulk.body.labelled.sort()).toEqual([c.id, ...rest.map((r) => r.id)].sort());
      expect(bulk.body.missing).toEqual(['999999998']);
      expect(await pending(site)).toHaveLength(0);
      expect((await pending(site, '&state=labelled')).map((s) => s.label).sort()).toEqual(['apples', 'apples', 'apples', 'apples', 'juice']);
      const counts = (await getJson<{ states: Record<string, number>; byCategory: Array<{ state: string; category: string; samples: number }> }>(api('/samples/counts'))).body;
      expect(counts.states.labelled).toBeGreaterThanOrEqual(5);
      expect(counts.byCategory.find((x) => x.state === 'labelled' && x.category === 'apples')?.samples).toBeGreaterThanOrEqual(4);

      const res = await hubFetch(api(`/samples/${a.id}/thumbnail`));
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      expect(res.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
      expect(res.headers.get('etag')).toBe(`"${createHash('sha256').update(bytes).digest('hex')}"`);
      expect(bytes.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
      const again = await hubFetch(api(`/samples/${a.id}/thumbnail`), { headers: { 'If-None-Match': res.headers.get('etag')! } });
      expect(again.status).toBe(304);
      const bad = await getJson<{ message: string[] }>(api('/samples?minConfidence=0.9&maxConfidence=0.1'));
      expect(bad.status).toBe(400);
      expect(bad.body.message[0]).toMatch(/^minConfidence:/);
      expect((await getJson<{ message: string[] }>(api('/samples?order=random'))).body.message[0]).toMatch(/^order:/);
    });

    it('corrects detections: moves the current state with exact history, asks for the frame, and labels the reply or records not_held', async () => {
      const site = siteOf('corr');
      const dev = await device('corr');
      const held = new Map<string, Float32Array>();
      answering(dev, site, held);
      const d1 = detection(1, { site, location: 'A-01-1-A', category: 'milk' });
      const d2 = detection(2, { site, location: 'A-01-1-B', category: 'milk' });
      const d3 = detection(3, { site, location: 'A-01-1-B', category: 'juice' });
      held.set(d1.frameId, randomVector(DIM, 900));
      await dev.sendDetections([d1, d2, d3]);
      await dev.waitForAcks([1, 2, 3]);
      type Det = { items: Array<{ id: string; seq: number }> };
      const dets = (await getJson<Det>(api(`/detections?site=${site}`))).body.items;
      const idOf = (seq: number) => dets.find((x) => x.seq === seq)!.id;

      const current = await post<CorrectionJson>(`/detections/${idOf(1)}/correction`, { category: 'juice' });
      expect(current.status).toBe(201);
      expect(current.body).toMatchObject({ movedState: true, previousCategory: 'milk', category: 'juice', frameStatus: 'requested', correctedBy: 'key:bootstrap' });
      const received = await eventually(async () => {
        const list = (await getJson<CorrectionJson[]>(api(`/detections/${idOf(1)}/correction`))).body;
        return list[0]?.frameStatus === 'received' ? list[0] : undefined;
      }, 15_000, 'the corrected frame');
      const sample = (await getJson<SampleJson>(api(`/samples/${received.sampleId}`))).body;
      expect(sample).toMatchObject({ reason: 'requested', state: 'labelled', label: 'juice', labelledBy: 'key:bootstrap', frameId: d1.frameId, detectionId: idOf(1), expiresAt: null, embeddingDim: DIM });

      // Not current any more (seq 3 replaced it): recorded, state untouched; the frame is gone.
      const stale = await post<CorrectionJson>(`/detections/${idOf(2)}/correction`, { category: 'apples' });
      expect(stale.body).toMatchObject({ movedState: false, previousCategory: 'milk', category: 'apples' });
      await eventually(async () => {
        const list = (await getJson<CorrectionJson[]>(api(`/detections/${idOf(2)}/correction`))).body;
        return list[0]?.frameStatus === 'not_held' ? true : undefined;
      }, 15_000, 'not_held');
      expect(dev.frameRequests.map((r) => r.frameId).sort()).toEqual([d1.frameId, d2.frameId].sort());
      expect((await post(`/detections/${idOf(2)}/correction`, { category: 'yoghurt-or-so' })).status).toBe(400);
      expect((await post(`/detections/999999999/correction`, { category: 'milk' })).status).toBe(404);

      const inventory = (await getJson<{ categories: Array<{ category: string; locations: number }> }>(api(`/inventory?site=${site}`))).body;
      expect(Object.fromEntries(inventory.categories.map((x) => [x.category, x.locations]))).toEqual({ juice: 2 });
      type Loc = { state: { category: string }; history: Array<{ id: string; misclassified: boolean }>; corrections: CorrectionJson[] };
      const loc = (await getJson<Loc>(api(`/locations/A-01-1-A?site=${site}`))).body;
      expect(loc.state.category).toBe('juice');
      expect(loc.history[0]).toMatchObject({ id: idOf(1), misclassified: true });
      expect(loc.corrections).toHaveLength(1);

      // A newer detection moves the corrected state on; history stays exact throughout.
      await dev.sendDetections([detection(4, { site, location: 'A-01-1-A', category: 'milk' })]);
      await dev.waitForAcks([4]);
      const from = new Date(Date.now() - 3 * 3600_000).toISOString();
      const history = (await getJson<{ points: Array<{ counts: Record<string, number> }> }>(api(`/inventory/history?site=${site}&from=${from}&bucket=hour`))).body;
      expect(history.points[history.points.length - 1]!.counts).toMatchObject({ juice: 1, milk: 1 });
      const sql = new Client({ connectionString: sut.hub.databaseUrl });
      await sql.connect();
      try {
        expect(await checkInventoryConsistency(sql, 0.5)).toEqual({ stateMismatches: 0, historyMismatches: 0 });
      } finally {
        await sql.end();
      }
    });

    it('disputes a location two devices disagree on within the window, queues both frames ahead of low confidence; outside the window it is an ordinary change', async () => {
      const site = siteOf('dis');
      const one = await device('dis1');
      const two = await device('dis2');
      answering(one, site, new Map());
      answering(two, site, new Map());
      // Both answer every request with the frame.
      for (const dev of [one, two]) {
        dev.onFrameRequest = async (req) => {
          const sample = await sampleMessage(dev.id, { site, frameId: req.frameId, reason: 'requested', requestId: req.requestId, topK: withMargin(0.3), embedding: randomVector(DIM, 7) });
          await dev.sendRaw('frame-reply', JSON.stringify({ v: 1, deviceId: dev.id, requestId: req.requestId, frameId: req.frameId, status: 'ok', sample }));
        };
      }
      await send(one, await sampleMessage(one.id, { site, topK: withMargin(0.01) }));
      const t0 = Date.now() - 1800_000;
      const at = (s: number) => new Date(t0 + s * 1000).toISOString();
      await one.sendDetections([detection(1, { site, location: 'B-01-1-A', category: 'milk', capturedAt: at(0) })]);
      await one.waitForAcks([1]);
      await two.sendDetections([detection(1, { site, location: 'B-01-1-A', category: 'juice', capturedAt: at(20) })]);
      await two.waitForAcks([1]);
      // Outside the window (10 minutes apart): a restock, nothing disputed.
      await one.sendDetections([detection(2, { site, location: 'B-01-1-B', category: 'milk', capturedAt: at(0) })]);
      await one.waitForAcks([2]);
      await two.sendDetections([detection(2, { site, location: 'B-01-1-B', category: 'juice', capturedAt: at(600) })]);
      await two.waitForAcks([2]);
      await sut.hub.app.get(DisagreementChecker).idle();

      const queue = await waitForSamples(site, 3);
      expect(queue.map((s) => s.reason)).toEqual(['disagreement', 'disagreement', 'low_confidence']);
      expect(queue.slice(0, 2).map((s) => s.deviceId).sort()).toEqual([one.id, two.id].sort());
      expect(queue[0]!.priority).toBeGreaterThan(queue[2]!.priority);
      expect(queue[2]!.scored.margin).toBeLessThan(queue[0]!.scored.margin);
      expect((await pending(site, '&reason=disagreement')).every((s) => s.state === 'pending')).toBe(true);

      type Loc = { state: { category: string }; dispute: { categories: string[]; devices: string[]; detectionIds: string[] } | null; history: Array<{ disputedAt: string | null }> };
      const disputed = (await getJson<Loc>(api(`/locations/B-01-1-A?site=${site}`))).body;
      expect(disputed.dispute).toMatchObject({ categories: ['juice', 'milk'], devices: [one.id, two.id].sort() });
      expect(disputed.history.every((h) => h.disputedAt !== null)).toBe(true);
      const ordinary = (await getJson<Loc>(api(`/locations/B-01-1-B?site=${site}`))).body;
      expect(ordinary.dispute).toBeNull();
      expect(ordinary.state.category).toBe('juice');
      expect(one.frameRequests).toHaveLength(1);
      expect(two.frameRequests).toHaveLength(1);
    });

    // Last: the purge runs at a future time and deletes every unlabelled sample of this hub.
    it('purges unlabelled samples after the retention with the thumbnails no one else uses, and keeps labelled ones', async () => {
      const site = siteOf('exp');
      const dev = await device('exp');
      const shared = await jpegThumbnail(4242);
      await send(dev, await sampleMessage(dev.id, { site, thumbnail: shared, topK: withMargin(0.01) }));
      await send(dev, await sampleMessage(dev.id, { site, thumbnail: shared, topK: withMargin(0.02) }));
      await send(dev, await sampleMessage(dev.id, { site, topK: withMargin(0.03) }));
      const [keep, sharing, alone] = (await waitForSamples(site, 3)) as [SampleJson, SampleJson, SampleJson];
      expect(keep.thumbnail.sha256).toBe(sharing.thumbnail.sha256);
      await post(`/samples/${keep.id}/label`, { category: 'milk' });
      const blobs = sut.hub.app.get<symbol, BlobStore>(BLOB_STORE);
      expect(await blobs.has(alone.thumbnail.sha256)).toBe(true);

      const purge = sut.hub.app.get(SamplePurgeService);
      expect((await purge.runOnce(new Date(Date.now() + 6 * 86_400_000))).samples).toBe(0);
      const result = await purge.runOnce(new Date(Date.now() + 8 * 86_400_000));
      expect(result.samples).toBeGreaterThanOrEqual(2);
      expect((await getJson(api(`/samples/${alone.id}`))).status).toBe(404);
      expect((await getJson(api(`/samples/${sharing.id}`))).status).toBe(404);
      expect((await getJson<SampleJson>(api(`/samples/${keep.id}`))).body.state).toBe('labelled');
      expect(await blobs.has(alone.thumbnail.sha256)).toBe(false);
      expect(await blobs.has(keep.thumbnail.sha256)).toBe(true);
      expect((await hubFetch(api(`/samples/${keep.id}/thumbnail`))).status).toBe(200);
    });
  });
}
