import { Logger } from '@nestjs/common';
import { SCHEMA_VERSION, type Ack, type Detection } from '@shelfsight/contracts';
import type { DeviceLink } from '../broker/device-link';
import type { HubConfig } from '../config/hub-config';
import { EventBus } from '../events/event-bus';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import type { CommitOutcome, DetectionWriter } from './detection-writer';
import { IngestService } from './ingest.service';

/** The batching writer at its boundary: each submit is a commit the test settles (or one that settles at once). */
class FakeWriter implements Pick<DetectionWriter, 'submit' | 'load'> {
  readonly submitted: Array<{ deviceId: string; seqs: number[] }> = [];
  /** What the next commits do: store, fail with an error, or be refused at the writer's bound (undefined). */
  outcomes: Array<'store' | Error | 'full'> = [];
  rows = 0;

  load(): { rows: number; bytes: number } {
    return { rows: this.rows, bytes: 0 };
  }

  submit(deviceId: string, _epoch: string, detections: Detection[]): Promise<CommitOutcome> | undefined {
    const next = this.outcomes.shift() ?? 'store';
    if (next === 'full') return undefined;
    this.submitted.push({ deviceId, seqs: detections.map((d) => d.seq) });
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve({ stored: detections.length, duplicates: 0, stateChanges: 0, seqConflicts: 0, deadLettered: 0 });
  }
}

class FakeLink implements Pick<DeviceLink, 'sendAck'> {
  readonly acks: Ack[] = [];
  failNext = false;

  sendAck(ack: Ack): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error('broker gone'));
    }
    this.acks.push(ack);
    return Promise.resolve();
  }
}

const batch = (deviceId: string, from: number, to: number, site = 's1') => ({
  v: SCHEMA_VERSION,
  deviceId,
  epoch: 'e1',
  sentAt: '2026-12-01T10:00:00.000Z',
  detections: Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    frameId: `f${from + i}`,
    site,
    location: 'A-01-1-A',
    capturedAt: '2026-12-01T10:00:00.000Z',
    category: 'milk',
    confidence: 0.9,
    topK: [],
    modelVersion: 'm1',
    latencyMs: 3,
  })),
});

describe(IngestService.name, () => {
  let writer: FakeWriter;
  let link: FakeLink;
  let metrics: HubMetrics;
  let events: EventBus;
  let published: unknown[];
  let sut: IngestService;

  const config = { ingestMaxPending: 1000, ingestMaxPendingBytes: 10_000_000, ingestRetryAfterMs: 2000 } as HubConfig;
  const metric = async (name: string) => new RegExp(`^${name}(\\{[^}]*\\})? (\\d+)$`, 'm').exec(await metrics.registry.metrics())?.[2];

  beforeAll(() => jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined));
  beforeEach(() => {
    writer = new FakeWriter();
    link = new FakeLink();
    metrics = new HubMetrics();
    events = new EventBus();
    published = [];
    jest.spyOn(events, 'publish').mockImplementation((name, data) => void published.push({ name, data }));
    sut = new IngestService(writer as unknown as DetectionWriter, new RejectionRecorder(metrics), metrics, link as unknown as DeviceLink, events, config);
  });

  it('does not acknowledge a batch whose commit failed, and takes it again when the device resends it', async () => {
    writer.outcomes = [new Error('connection terminated')];
    expect(await sut.ingestBatch('d1', batch('d1', 1, 3))).toBe('failed');
    expect(link.acks).toEqual([]);
    expect(published).toEqual([]);
    // Released from admission: the resend is committed (not dropped as pending) and only then acknowledged.
    expect(await sut.ingestBatch('d1', batch('d1', 1, 3))).toBe('acked');
    expect(writer.submitted.map((s) => s.seqs)).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
    expect(link.acks).toHaveLength(1);
    expect(link.acks[0]).toMatchObject({ deviceId: 'd1', epoch: 'e1', seqs: [1, 2, 3] });
  });

  it('acknowledges the seqs only after their commit, and tells the inventory screens of each site once', async () => {
    const b = batch('d1', 1, 2);
    b.detections[1]!.site = 's2';
    expect(await sut.ingestBatch('d1', b)).toBe('acked');
    expect(link.acks).toEqual([expect.objectContaining({ v: SCHEMA_VERSION, deviceId: 'd1', seqs: [1, 2], window: expect.any(Number) })]);
    expect(published.map((p) => (p as { data: { site: string } }).data.site).sort()).toEqual(['s1', 's2']);
    expect(await metric('shelfsight_acks_sent_total')).toBe('1');
  });

  it('acknowledges a retransmission of committed seqs without committing them again', async () => {
    await sut.ingestBatch('d1', batch('d1', 1, 3));
    expect(await sut.ingestBatch('d1', batch('d1', 1, 3))).toBe('acked');
    expect(writer.submitted).toHaveLength(1);
    expect(link.acks.map((a) => a.seqs)).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
  });

  it('rejects a malformed payload and one that names another device than its topic, committing and acking nothing', async () => {
    expect(await sut.ingestBatch('d1', { v: SCHEMA_VERSION, deviceId: 'd1' })).toBe('rejected');
    expect(await sut.ingestBatch('d1', Buffer.from('{not json'))).toBe('rejected');
    expect(await sut.ingestBatch('d1', batch('d2', 1, 1))).toBe('rejected');
    expect(writer.submitted).toEqual([]);
    expect(link.acks).toEqual([]);
    expect(await metrics.registry.metrics()).toMatch(/shelfsight_\w*reject\w*\{[^}]*reason="device_mismatch"[^}]*\} 1/);
  });

  it('defers a batch the writer refuses at its bound: names the seqs not taken and a retry-after, and takes them later', async () => {
    writer.outcomes = ['full'];
    expect(await sut.ingestBatch('d1', batch('d1', 1, 2))).toBe('deferred');
    expect(link.acks).toEqual([expect.objectContaining({ seqs: [], deferred: [1, 2], retryAfterMs: 2000 })]);
    expect(await sut.ingestBatch('d1', batch('d1', 1, 2))).toBe('acked');
    expect(writer.submitted.map((s) => s.seqs)).toEqual([[1, 2]]);
  });

  it('defers new detections before the writer when the pending rows are past the bound', async () => {
    const small = new IngestService(writer as unknown as DetectionWriter, new RejectionRecorder(metrics), metrics, link as unknown as DeviceLink, events, {
      ...config,
      ingestMaxPending: 2,
    });
    writer.rows = 5;
    expect(await small.ingestBatch('d1', batch('d1', 1, 2))).toBe('deferred');
    expect(writer.submitted).toEqual([]);
    expect(link.acks[0]).toMatchObject({ deferred: [1, 2], retryAfterMs: expect.any(Number) });
    expect(await metric('shelfsight_detections_deferred_total')).toBe('2');
  });

  it('still reports a committed batch as acked when the ack cannot be sent (the device resends and is acked then)', async () => {
    link.failNext = true;
    expect(await sut.ingestBatch('d1', batch('d1', 1, 1))).toBe('acked');
    expect(link.acks).toEqual([]);
    expect(await sut.ingestBatch('d1', batch('d1', 1, 1))).toBe('acked');
    expect(writer.submitted).toHaveLength(1);
    expect(link.acks[0]).toMatchObject({ seqs: [1] });
  });
});
