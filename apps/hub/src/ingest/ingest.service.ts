import { Inject, Injectable, Logger } from '@nestjs/common';
import { parseDetectionBatch, SCHEMA_VERSION } from '@shelfsight/contracts';
import { DEVICE_LINK, type DeviceLink } from '../broker/device-link';
import { EventBus } from '../events/event-bus';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import { DetectionWriter } from './detection-writer';

export type IngestResult = 'acked' | 'rejected' | 'deferred' | 'failed';

/**
 * Ingest of detection batches: validate, commit through the batching writer, and only
 * then acknowledge the sequence numbers to the device. A batch that cannot be accepted
 * right now is not acknowledged, so the device keeps it and sends it again.
 */
@Injectable()
export class IngestService {
  private readonly log = new Logger(IngestService.name);

  constructor(
    private readonly writer: DetectionWriter,
    private readonly rejections: RejectionRecorder,
    private readonly metrics: HubMetrics,
    @Inject(DEVICE_LINK) private readonly link: DeviceLink,
    private readonly events: EventBus,
  ) {}

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
    this.metrics.detectionsReceived.inc({}, batch.detections.length);
    const commit = this.writer.submit(batch.deviceId, batch.epoch, batch.detections);
    if (!commit) {
      this.metrics.overloaded.inc();
      return 'deferred';
    }
    try {
      await commit;
    } catch (err) {
      this.log.warn(`batch from ${batch.deviceId} not committed: ${(err as Error).message}`);
      return 'failed';
    }
    const at = new Date().toISOString();
    for (const site of new Set(batch.detections.map((d) => d.site))) this.events.publish('inventory', { site, at }, { coalesce: `inventory:${site}` });
    const seqs = batch.detections.map((d) => d.seq);
    try {
      await this.link.sendAck({ v: SCHEMA_VERSION, deviceId: batch.deviceId, epoch: batch.epoch, seqs, committedAt: new Date().toISOString() });
      this.metrics.acksSent.inc();
    } catch (err) {
      // Committed but not acknowledged: the device resends, the database ignores the repeat, and we ack then.
      this.log.warn(`ack to ${batch.deviceId} failed: ${(err as Error).message}`);
    }
    return 'acked';
  }
}
