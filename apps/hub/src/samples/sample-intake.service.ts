import { Injectable } from '@nestjs/common';
import { FrameReplySchema, parsePayload, SampleSchema, type RejectReason, type Sample } from '@shelfsight/contracts';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import type { SampleRejectReason } from './sample-scores';
import { SampleWriter } from './sample-writer';

export type IntakeResult = 'queued' | 'rejected';

/**
 * Samples and frame replies from devices: validate, then hand to the sample writer's
 * queue and return at once (the MQTT handler never waits on the database). Every refusal
 * is counted by reason in shelfsight_samples_rejected_total.
 */
@Injectable()
export class SampleIntakeService {
  constructor(
    private readonly writer: SampleWriter,
    private readonly metrics: HubMetrics,
    private readonly rejections: RejectionRecorder,
  ) {}

  acceptSample(topicDeviceId: string, payload: unknown): IntakeResult {
    const parsed = parsePayload(SampleSchema, payload);
    if (!parsed.ok) return this.refuse('samples', parsed.reason, topicDeviceId, parsed.message);
    const sample = parsed.value;
    if (sample.deviceId !== topicDeviceId) return this.refuse('samples', 'device_mismatch', topicDeviceId, `payload names device ${sample.deviceId}`);
    const checked = this.decode(sample);
    if (typeof checked === 'string') return this.reject(checked);
    return this.writer.offer({ kind: 'sample', sample, thumbnail: checked }) ? 'queued' : this.reject('queue_full');
  }

  acceptFrameReply(topicDeviceId: string, payload: unknown): IntakeResult {
    const parsed = parsePayload(FrameReplySchema, payload);
    if (!parsed.ok) return this.refuse('frame-reply', parsed.reason, topicDeviceId, parsed.message);
    const reply = parsed.value;
    if (reply.deviceId !== topicDeviceId || (reply.sample && reply.sample.deviceId !== topicDeviceId)) {
      return this.refuse('frame-reply', 'device_mismatch', topicDeviceId, `payload names device ${reply.deviceId}`);
    }
    let thumbnail: Buffer | undefined;
    if (reply.sample) {
      const checked = this.decode(reply.sample);
      if (typeof checked === 'string') return this.reject(checked);
      thumbnail = checked;
    }
    const work = { kind: 'reply' as const, requestId: reply.requestId, deviceId: reply.deviceId, frameId: reply.frameId, status: reply.status, sample: reply.sample, thumbnail };
    return this.writer.offer(work) ? 'queued' : this.reject('queue_full');
  }

  /** The thumbnail's bytes, or why the sample is malformed beyond its schema. */
  private decode(sample: Sample): Buffer | SampleRejectReason {
    if (sample.bottleneck && Buffer.byteLength(sample.bottleneck.data, 'base64') !== sample.bottleneck.dim * 4) return 'dimension_mismatch';
    const thumbnail = Buffer.from(sample.thumbnail.data, 'base64');
    // JPEG starts with FF D8; anything else would be served as image/jpeg wrongly.
    if (thumbnail.length < 4 || thumbnail[0] !== 0xff || thumbnail[1] !== 0xd8) return 'schema';
    return thumbnail;
  }

  /** A payload that breaks its contract: counted and logged (rate-limited) like every channel's, and as a refused sample. */
  private refuse(channel: string, reason: RejectReason, deviceId: string, detail: string): 'rejected' {
    this.rejections.record(channel, reason, deviceId, detail);
    return this.reject(reason);
  }

  private reject(reason: SampleRejectReason): 'rejected' {
    this.metrics.samplesRejected.inc({ reason });
    return 'rejected';
  }
}
