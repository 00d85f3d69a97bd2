import { isExactDetectionBatch, parseDetectionBatch } from './detection-batch-fast';
import { DetectionBatchSchema } from './messages';
import { parsePayload } from './parse';

/** Small seeded generator, so a failure names a case that can be replayed. */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

function validBatch(n = 3): Record<string, unknown> {
  return {
    v: 1,
    deviceId: 'robot-7',
    epoch: 'mk1abc-0123456789ab',
    sentAt: '2026-12-01T20:00:00.123Z',
    detections: Array.from({ length: n }, (_, i) => ({
      seq: i + 1,
      frameId: `frame-${i}`,
      site: 'store-1',
      location: 'A-01-1-B',
      capturedAt: '2026-12-01T19:59:59.5+01:00',
      category: 'milk',
      confidence: 0.75,
      topK: [
        { category: 'milk', confidence: 0.75 },
        { category: 'bread', confidence: 0.2 },
      ],
      modelVersion: 'm-1',
      latencyMs: 12.5,
    })),
  };
}

/** Values that sit on or beyond some edge of the schema. */
const EDGES: unknown[] = [
  undefined, null, true, 0, -0, 1, -1, 0.5, 1.0000001, 2, 1.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, '', 'x', 'x'.repeat(64), 'x'.repeat(65),
  'x'.repeat(128), 'x'.repeat(129), 'A-01-1-A', 'a-01-1-a', 'A-01-1', 'AAAAA-1-1-1', 'robot 7', '-robot', 'r'.repeat(65), 'store.1', 'store/1', 'milk\u0000',
  '2026-12-01T20:00:00Z', '2024-02-29T00:00:00Z', '2026-02-29T00:00:00Z', '2026-12-01T20:00:00', '2026-12-01T20:00:00+0100', '2026-12-01 20:00:00Z',
  '2026-12-01T24:00:00Z', '2026-13-01T20:00:00Z', [], [{}], {}, { category: 'milk' }, { category: 'milk', confidence: 0.5, extra: 1 }, [{ category: 'milk', confidence: 2 }],
  Array.from({ length: 11 }, () => ({ category: 'milk', confidence: 0.1 })), Array.from({ length: 10 }, () => ({ category: 'milk', confidence: 0.1 })),
];

function paths(batch: Record<string, unknown>): string[][] {
  const out: string[][] = [['v'], ['deviceId'], ['epoch'], ['sentAt'], ['detections'], ['extra']];
  const ds = Array.isArray(batch.detections) ? (batch.detections as unknown[]) : [];
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i];
    if (typeof d !== 'object' || d === null) continue;
    for (const k of [...Object.keys(d), 'extra']) out.push(['detections', String(i), k]);
    out.push(['detections', String(i)]);
    out.push(['detections', String(i), 'topK', '0', 'confidence'], ['detections', String(i), 'topK', '1', 'category'], ['detections', String(i), 'topK', '0', 'extra']);
  }
  return out;
}

function setPath(root: Record<string, unknown>, path: string[], value: unknown): void {
  let o = root as Record<string, unknown>;
  for (const key of path.slice(0, -1)) {
    const next = o[key];
    if (typeof next !== 'object' || next === null) return;
    o = next as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (value === undefined && path.length > 0) delete o[last];
  else o[last] = value;
}

describe(parseDetectionBatch.name, () => {
  it('takes a well-formed batch on the fast path, unchanged', () => {
    const batch = validBatch(500);
    expect(isExactDetectionBatch(batch)).toBe(true);
    const parsed = parseDetectionBatch(Buffer.from(JSON.stringify(batch)));
    expect(parsed).toEqual({ ok: true, value: batch });
  });

  it('accepts and refuses exactly what the zod schema does, and says yes fast only to what zod returns unchanged', () => {
    const random = rng(20261201);
    let fast = 0;
    let accepted = 0;
    for (let i = 0; i < 6000; i++) {
      const batch = validBatch(1 + Math.floor(random() * 3));
      const mutations = Math.floor(random() * 3); // 0: some cases stay valid
      for (let m = 0; m < mutations; m++) {
        const all = paths(batch);
        setPath(batch, all[Math.floor(random() * all.length)]!, EDGES[Math.floor(random() * EDGES.length)]);
      }
      const ds = batch.detections;
      if (random() < 0.05 && Array.isArray(ds) && ds.length > 0) ds.push(structuredClone(ds[0])); // duplicate seq
      const zod = DetectionBatchSchema.safeParse(batch);
      const ours = parseDetectionBatch(batch);
      const reference = parsePayload(DetectionBatchSchema, batch);
      expect({ case: i, ok: ours.ok }).toEqual({ case: i, ok: zod.success });
      expect(ours).toEqual(reference);
      if (isExactDetectionBatch(batch)) {
        fast++;
        expect({ case: i, zod: zod.success }).toEqual({ case: i, zod: true });
        expect(zod.data).toEqual(batch);
      }
      if (zod.success) accepted++;
    }
    // The generator must exercise both sides of both paths.
    expect(fast).toBeGreaterThan(500);
    expect(accepted).toBeGreaterThan(fast);
    expect(6000 - accepted).toBeGreaterThan(2000);
  });

  it('refuses a batch that is not JSON, as parsePayload does', () => {
    expect(parseDetectionBatch('{"v":1,')).toEqual({ ok: false, reason: 'invalid_json', message: 'payload is not valid JSON' });
  });
});

describe('NUL characters in payload text', () => {
  // PostgreSQL stores no NUL in text or jsonb: a batch carrying one would be accepted and
  // then refused by every commit, holding up the batches committed with it.
  it.each([['category'], ['frameId'], ['modelVersion']])('refuses a detection whose %s contains one, on both paths', (field) => {
    const batch = validBatch(2);
    (batch.detections as Array<Record<string, unknown>>)[1]![field] = 'milk\u0000';
    expect(isExactDetectionBatch(batch)).toBe(false);
    const zod = parsePayload(DetectionBatchSchema, JSON.stringify(batch));
    expect(zod.ok).toBe(false);
    const fast = parseDetectionBatch(Buffer.from(JSON.stringify(batch)));
    expect(fast.ok).toBe(false);
    expect(fast.ok ? '' : fast.message).toContain('NUL');
  });
});

describe('values PostgreSQL would refuse on every commit', () => {
  it.each([
    ['a capture time in year 0', (d: Record<string, unknown>) => (d.capturedAt = '0000-01-01T00:00:00Z')],
    ['a latency beyond an hour (1e39 overflows real)', (d: Record<string, unknown>) => (d.latencyMs = 1e39)],
  ])('refuses %s, on both paths', (_what, damage) => {
    const batch = validBatch(2);
    damage((batch.detections as Array<Record<string, unknown>>)[0]!);
    expect(isExactDetectionBatch(batch)).toBe(false);
    expect(parsePayload(DetectionBatchSchema, JSON.stringify(batch)).ok).toBe(false);
    expect(parseDetectionBatch(Buffer.from(JSON.stringify(batch))).ok).toBe(false);
  });
});
