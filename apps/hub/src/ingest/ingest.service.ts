import { Inject, Injectable, Logger } from '@nestjs/common';
import { parseDetectionBatch, SCHEMA_VERSION, type Ack } from '@shelfsight/contracts';
import { DEVICE_LINK, type DeviceLink } from '../broker/device-link';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { EventBus } from '../events/event-bus';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import { DetectionWriter } from './detection-writer';
import { estimatedBytes, IngestAdmission } from './ingest-admission';

export type IngestResult = 'acked' | 'rejected' | 'deferred' | 'failed';

/**
 * Ingest of detection batches: validate, admit ({@link IngestAdmission}: retransmissions
 * of what this hub holds or has pending are dropped before any SQL, new detections are
 * deferred when the writer is full), commit through the batching writer, and only then
 * acknowledge the sequence numbers to the device. Every ack grants the device a window;
 * a deferring ack names the seqs not taken and a retry-after (the device keeps them).
 */
@Injectable()
export class IngestService {
  private readonly log = new Logger(IngestService.name);
  private readonly admission: IngestAdmission;

  constructor(
    private readonly writer: DetectionWriter,
    private readonly rejections: RejectionRecorder,
    private readonly metrics: HubMetrics,
    @Inject(DEVICE_LINK) private readonly link: DeviceLink,
    private readonly events: EventBus,
    @Inject(HUB_CONFIG) config: HubConfig,
  ) {
    this.admission = new IngestAdmission({
      maxPendingRows: config.ingestMaxPending,
      maxPendingBytes: config.ingestMaxPendingBytes,
      retryAfterMs: config.ingestRetryAfterMs,
    });
    metrics.ingestWindow.readFrom(() => this.admission.window(this.writer.load()));
    metrics.ingestCommitRate.readFrom(() => this.admission.commitRate());
  }

  async ingestBatch(topicDeviceId: string, payload: unknown): Promise<IngestResult> {
    const parsed = parseDetectionBatch(payload); // the schema's checks, by hand for a well-formed batch
    if (!parsed.ok) {
      this.rejections.record('detections', parsed.reason, topicDeviceId, parsed.message);
      return 'rejected';
    }
    const batch = parsed.value;
    if (batch.deviceId !== topicDeviceId) {
      this.rejections.record('detections', 'device_mismatch', topicDeviceId, `payload names device ${batch.deviceId}`);
      return 'rejected';
    }
    const { deviceId, epoch } = batch;
    this.metrics.detectionsReceived.inc({}, batch.detections.length);
    const bytes = estimatedBytes(batch.detections);
    const a = this.admission.admit(deviceId, epoch, batch.detections, bytes, this.writer.load());
    if (a.held.length > 0) this.metrics.detectionsRedelivered.inc({ where: 'held' }, a.held.length);
    if (a.pending.length > 0) this.metrics.detectionsRedelivered.inc({ where: 'pending' }, a.pending.length);
    // Ignored before any SQL, as the database ignores the repeats that reach it: duplicates all the same.
    if (a.held.length + a.pending.length > 0) this.metrics.detectionsDuplicate.inc({}, a.held.length + a.pending.length);
    if (a.fresh.length === 0) {
      if (a.deferred.length > 0) {
        this.metrics.overloaded.inc();
        this.metrics.detectionsDeferred.inc({}, a.deferred.length);
      }
      if (a.held.length > 0 || a.deferred.length > 0) {
        await this.sendAck({ deviceId, epoch, seqs: a.held, window: a.window, ...(a.deferred.length > 0 ? { deferred: a.deferred, retryAfterMs: a.retryAfterMs } : {}) });
      }
      return a.deferred.length > 0 ? 'deferred' : 'acked';
    }
    const freshSeqs = a.fresh.map((d) => d.seq);
    const commit = this.writer.submit(deviceId, epoch, a.fresh, Math.ceil((bytes * a.fresh.length) / batch.detections.length));
    if (!commit) {
      // The writer's own bound (admission keeps under it; a race between messages can still meet it).
      this.admission.released(deviceId, epoch, freshSeqs);
      this.metrics.overloaded.inc();
      this.metrics.detectionsDeferred.inc({}, freshSeqs.length);
      const window = this.admission.window(this.writer.load());
      await this.sendAck({ deviceId, epoch, seqs: a.held, deferred: freshSeqs, retryAfterMs: this.admission.retryAfterMs, window });
      return 'deferred';
    }
    try {
      await commit;
    } catch (err) {
      this.admission.released(deviceId, epoch, freshSeqs);
      this.log.warn(`batch from ${deviceId} not committed: ${(err as Error).message}`);
      return 'failed';
    }
    this.admission.committed(deviceId, epoch, a.fresh);
    const at = new Date().toISOString();
    for (const site of new Set(a.fresh.map((d) => d.site))) this.events.publish('inventory', { site, at }, { coalesce: `inventory:${site}` });
    await this.sendAck({ deviceId, epoch, seqs: a.held.length > 0 ? [...freshSeqs, ...a.held] : freshSeqs, window: this.admission.window(this.writer.load()) });
    return 'acked';
  }

  private async sendAck(ack: Omit<Ack, 'v' | 'committedAt'>): Promise<void> {
    try {
      await this.link.sendAck({ v: SCHEMA_VERSION, ...ack, committedAt: new Date().toISOString() });
      this.metrics.acksSent.inc();
    } catch (err) {
      // Not acknowledged: the device resends, the hub drops the repeat (or the database ignores it), and we ack then.
      this.log.warn(`ack to ${ack.deviceId} failed: ${(err as Error).message}`);
    }
  }
}
