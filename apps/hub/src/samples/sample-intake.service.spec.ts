import { Logger } from '@nestjs/common';
import { SCHEMA_VERSION, type Sample } from '@shelfsight/contracts';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import { SampleIntakeService } from './sample-intake.service';
import type { SampleWork, SampleWriter } from './sample-writer';

/** The sample writer's queue at its boundary: takes work until it is full. */
class FakeQueue implements Pick<SampleWriter, 'offer'> {
  readonly taken: SampleWork[] = [];
  full = false;

  offer(work: SampleWork): boolean {
    if (this.full) return false;
    this.taken.push(work);
    return true;
  }
}

/** Starts like a JPEG (FF D8 FF E0), which is all the intake checks of the bytes. */
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4]);

const sample = (deviceId: string, over: Partial<Sample> = {}): Sample => ({
  v: SCHEMA_VERSION,
  deviceId,
  sampleId: 'f1:low_confidence',
  reason: 'low_confidence',
  frameId: 'f1',
  site: 's1',
  location: 'A-01-1-A',
  capturedAt: '2026-12-01T10:00:00.000Z',
  prediction: { category: 'milk', confidence: 0.4, topK: [], modelVersion: 'm1' },
  backboneId: 'b1',
  thumbnail: { mime: 'image/jpeg', width: 4, height: 2, data: JPEG.toString('base64') },
  sentAt: '2026-12-01T10:00:01.000Z',
  ...over,
});

describe(SampleIntakeService.name, () => {
  let queue: FakeQueue;
  let metrics: HubMetrics;
  let sut: SampleIntakeService;
  const rejected = async () =>
    Object.fromEntries([...(await metrics.registry.metrics()).matchAll(/^shelfsight_samples_rejected_total\{reason="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));

  beforeAll(() => jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined));
  beforeEach(() => {
    queue = new FakeQueue();
    metrics = new HubMetrics();
    sut = new SampleIntakeService(queue as unknown as SampleWriter, metrics, new RejectionRecorder(metrics));
  });

  it('queues a valid sample with its decoded thumbnail', () => {
    expect(sut.acceptSample('cam-1', sample('cam-1'))).toBe('queued');
    expect(queue.taken).toEqual([{ kind: 'sample', sample: expect.objectContaining({ sampleId: 'f1:low_confidence' }), thumbnail: JPEG }]);
  });

  it('refuses, and counts by reason: a malformed payload, another device than the topic, a thumbnail that is not a JPEG, a bottleneck of the wrong size, a full queue', async () => {
    expect(sut.acceptSample('cam-1', { v: SCHEMA_VERSION, deviceId: 'cam-1' })).toBe('rejected');
    expect(sut.acceptSample('cam-1', sample('cam-2'))).toBe('rejected');
    expect(sut.acceptSample('cam-1', sample('cam-1', { thumbnail: { mime: 'image/jpeg', width: 1, height: 1, data: Buffer.from([0x00, 0xd8, 0xff, 0xe0]).toString('base64') } }))).toBe('rejected');
    const threeFloats = Buffer.alloc(12).toString('base64');
    expect(sut.acceptSample('cam-1', sample('cam-1', { bottleneck: { dim: 4, encoding: 'f32le-base64', data: threeFloats } }))).toBe('rejected');
    queue.full = true;
    expect(sut.acceptSample('cam-1', sample('cam-1'))).toBe('rejected');
    expect(queue.taken).toEqual([]);
    expect(await rejected()).toMatchObject({ schema: 2, device_mismatch: 1, dimension_mismatch: 1, queue_full: 1 });
  });

  it('queues a frame reply: with its sample when the device held the frame, without one when it did not', () => {
    const ok = { v: SCHEMA_VERSION, deviceId: 'cam-1', requestId: 'r1', frameId: 'f1', status: 'ok', sample: sample('cam-1', { reason: 'requested', requestId: 'r1' }) };
    const gone = { v: SCHEMA_VERSION, deviceId: 'cam-1', requestId: 'r2', frameId: 'f2', status: 'not_held' };
    expect(sut.acceptFrameReply('cam-1', ok)).toBe('queued');
    expect(sut.acceptFrameReply('cam-1', gone)).toBe('queued');
    expect(queue.taken).toEqual([
      expect.objectContaining({ kind: 'reply', requestId: 'r1', status: 'ok', thumbnail: JPEG }),
      expect.objectContaining({ kind: 'reply', requestId: 'r2', status: 'not_held', thumbnail: undefined }),
    ]);
  });

  it('refuses a frame reply whose sample names another device, or whose thumbnail is not a JPEG', async () => {
    const foreign = { v: SCHEMA_VERSION, deviceId: 'cam-1', requestId: 'r1', frameId: 'f1', status: 'ok', sample: sample('cam-2') };
    const notJpeg = { ...foreign, sample: sample('cam-1', { thumbnail: { mime: 'image/jpeg', width: 1, height: 1, data: 'AAAA' } }) };
    expect(sut.acceptFrameReply('cam-1', foreign)).toBe('rejected');
    expect(sut.acceptFrameReply('cam-1', notJpeg)).toBe('rejected');
    expect(queue.taken).toEqual([]);
    expect(await rejected()).toMatchObject({ device_mismatch: 1, schema: 1 });
  });
});
