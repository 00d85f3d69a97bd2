import sharp from 'sharp';
import {
  FrameReplySchema,
  SampleSchema,
  decodeBottleneck,
  deviceTopic,
  parsePayload,
  type Detection,
  type Sample,
} from '@shelfsight/contracts';
import type { ClassifiedFrame } from '../pipeline/pipeline';
import { FrameRing } from './frame-ring';
import { Sampler, type SamplerOptions } from './sampler';

let image: Buffer;
beforeAll(async () => {
  image = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#c04020' } }).png().toBuffer();
});

function classified(n: number, topK: Array<[string, number]>): ClassifiedFrame {
  const detection: Detection = {
    seq: n,
    frameId: `frame-${n}`,
    site: 'site-1',
    location: 'A-01-1-A',
    capturedAt: '2026-01-01T00:00:00.000Z',
    category: topK[0]?.[0] ?? 'milk',
    confidence: topK[0]?.[1] ?? 1,
    topK: topK.map(([category, confidence]) => ({ category, confidence })),
    modelVersion: 'm1',
    latencyMs: 1,
  };
  return {
    frame: { frameId: detection.frameId, site: 'site-1', location: 'A-01-1-A', capturedAt: detection.capturedAt, image, source: 'test' },
    detection,
    classification: { category: detection.category, confidence: detection.confidence, topK: detection.topK, latencyMs: 1, embedding: Float32Array.from([0.25, 0.5, 0.75]) },
  };
}

describe(Sampler.name, () => {
  let published: Array<{ topic: string; payload: Buffer }>;
  let now: number;
  let online: boolean;
  const make = (opts: Partial<SamplerOptions> = {}, ring?: FrameRing) =>
    new Sampler(
      { minConfidence: 0.6, minMargin: 0.1, auditRate: 0, perMinute: 100, perDay: 1000, random: () => 0.5, now: () => now, ...opts },
      {
        deviceId: 'dev-1',
        backboneId: () => 'bb-1',
        publish: (topic, payload) => {
          if (!online) return false;
          published.push({ topic, payload });
          return true;
        },
        ring,
      },
    );
  const samples = (): Sample[] =>
    published.filter((p) => p.topic === deviceTopic('dev-1', 'samples')).map((p) => {
      const parsed = parsePayload(SampleSchema, p.payload);
      if (!parsed.ok) throw new Error(parsed.message);
      return parsed.value;
    });
  const settled = async (sut: Sampler) => {
    for (let i = 0; i < 500 && sut.busy; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sut.busy).toBe(false);
  };

  beforeEach(() => {
    published = [];
    now = Date.UTC(2026, 0, 1);
    online = true;
  });

  it('picks low confidence, small margins and audits, and nothing else', () => {
    const sut = make({ auditRate: 0.1 });
    expect(sut.reasonFor(classified(1, [['milk', 0.5], ['juice', 0.3]]))).toBe('low_confidence');
    expect(sut.reasonFor(classified(2, [['milk', 0.62], ['juice', 0.55]]))).toBe('small_margin');
    expect(sut.reasonFor(classified(3, [['milk', 0.9], ['juice', 0.05]]))).toBeUndefined();
    const auditing = make({ auditRate: 0.1, random: () => 0.05 });
    expect(auditing.reasonFor(classified(4, [['milk', 0.9], ['juice', 0.05]]))).toBe('audit');
  });

  it('sends a valid sample: JPEG thumbnail, the classification’s embedding as bottleneck, prediction, metadata', async () => {
    const sut = make();
    sut.consider(classified(7, [['milk', 0.4], ['juice', 0.35]]));
    await settled(sut);
    const [sample] = samples();
    expect(sample).toMatchObject({ deviceId: 'dev-1', reason: 'low_confidence', frameId: 'frame-7', seq: 7, backboneId: 'bb-1', location: 'A-01-1-A' });
    expect(sample?.prediction).toMatchObject({ category: 'milk', confidence: 0.4, modelVersion: 'm1' });
    const thumb = Buffer.from(sample?.thumbnail.data ?? '', 'base64');
    expect(thumb.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect([sample?.thumbnail.width, sample?.thumbnail.height]).toEqual([224, 168]);
    expect([...decodeBottleneck(sample?.bottleneck ?? { dim: 0, encoding: 'f32le-base64', data: '' })]).toEqual([0.25, 0.5, 0.75]);
  });

  it('respects the per-minute and per-day limits', async () => {
    const sut = make({ perMinute: 2, perDay: 3 });
    const unsure = (n: number) => classified(n, [['milk', 0.3]]);
    for (let n = 1; n <= 4; n++) sut.consider(unsure(n));
    expect(sut.counts).toMatchObject({ low_confidence: 2, rate_limited: 2 });
    now += 61_000;
    sut.consider(unsure(5));
    sut.consider(unsure(6));
    expect(sut.counts).toMatchObject({ low_confidence: 3, rate_limited: 3 });
    now += 86_400_000;
    sut.consider(unsure(7));
    expect(sut.counts.low_confidence).toBe(4);
    await settled(sut);
    expect(samples().map((s) => s.frameId)).toEqual(['frame-1', 'frame-2', 'frame-5', 'frame-7']);
  });

  it('holds samples while offline and sends them on reconnect', async () => {
    online = false;
    const sut = make();
    sut.consider(classified(1, [['milk', 0.3]]));
    await settled(sut);
    expect(published).toHaveLength(0);
    online = true;
    sut.flush();
    expect(samples().map((s) => s.frameId)).toEqual(['frame-1']);
  });

  it('answers frame requests from the ring buffer, or says the frame is no longer held', async () => {
    const ring = new FrameRing(2, 10 * 1024 * 1024);
    const sut = make({ perMinute: 0 }, ring);
    for (let n = 1; n <= 3; n++) sut.consider(classified(n, [['milk', 0.95]]));
    sut.request({ v: 1, deviceId: 'dev-1', requestId: 'r-3', frameId: 'frame-3' });
    sut.request({ v: 1, deviceId: 'dev-1', requestId: 'r-1', frameId: 'frame-1' });
    await settled(sut);
    const replies = published
      .filter((p) => p.topic === deviceTopic('dev-1', 'frame-reply'))
      .map((p) => parsePayload(FrameReplySchema, p.payload))
      .map((r) => (r.ok ? r.value : undefined));
    const byId = new Map(replies.map((r) => [r?.requestId, r]));
    expect(byId.get('r-3')).toMatchObject({ status: 'ok', frameId: 'frame-3', sample: { reason: 'requested', requestId: 'r-3', frameId: 'frame-3' } });
    expect(byId.get('r-1')).toMatchObject({ status: 'not_held', frameId: 'frame-1' });
    expect(ring.evicted).toBe(1);
    expect(samples()).toHaveLength(0);
  });
});
