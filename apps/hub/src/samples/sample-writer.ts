import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { zoneOfLocation, type Sample } from '@shelfsight/contracts';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { PRIORITY, type SampleRejectReason, type StoredSampleReason, uncertaintyOf } from './sample-scores';
import { SamplesRepository, type FrameRequestRow, type NewSample } from './samples.repository';

/** A validated sample, or a device's answer to a frame request. */
export type SampleWork =
  | { kind: 'sample'; sample: Sample; thumbnail: Buffer }
  | { kind: 'reply'; requestId: string; deviceId: string; frameId: string; status: 'ok' | 'not_held'; sample?: Sample; thumbnail?: Buffer };

const BATCH = 50;
const WRITE_ATTEMPTS = 3;
const BACKBONE_CACHE_MS = 2000;

/**
 * The sample store's own writer: a bounded in-memory queue and one loop that stores
 * samples in batches (thumbnails to the blob store, rows to PostgreSQL). Separate from
 * the detection writer, so samples never hold up ingest: when the queue is full a sample
 * is dropped and counted (samples are best effort on the device too). Checks done here,
 * off the MQTT handler: the backbone must be one the hub has a model for, the embedding
 * its dimension, and the device within its daily quota (frames the hub asked for are
 * exempt). With several hub replicas each counts against the database, so the quota
 * holds to within one batch per replica.
 */
@Injectable()
export class SampleWriter implements OnModuleDestroy {
  private readonly log = new Logger(SampleWriter.name);
  private readonly queue: SampleWork[] = [];
  private running?: Promise<void>;
  private closed = false;
  private backbones?: { at: number; map: Map<string, number | null> };
  /** Injected clock (tests move it). */
  now: () => Date = () => new Date();

  constructor(
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly repo: SamplesRepository,
    private readonly metrics: HubMetrics,
  ) {
    metrics.samplesQueued.readFrom(() => this.queue.length);
  }

  /** Queue work; false when the queue is full (the caller counts the drop). */
  offer(work: SampleWork): boolean {
    if (this.closed || this.queue.length >= this.config.sampleQueueMax) return false;
    this.queue.push(work);
    if (!this.running) this.running = this.drain().finally(() => (this.running = undefined));
    return true;
  }

  /** Resolves when everything queued so far is written (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, 5000))]);
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH);
      if (await this.writeWithRetry(batch)) continue;
      // The batch failed every time: write its samples one by one, so only the one the
      // store refuses is lost (counted), not the 49 good ones beside it. Repeating work is
      // harmless: blobs are content-addressed, rows ON CONFLICT DO NOTHING.
      for (const work of batch) {
        try {
          await this.write([work]);
        } catch (err) {
          // Best effort: a sample that cannot be written is lost (the device does not resend samples).
          this.metrics.samplesRejected.inc({ reason: 'store_failed' });
          this.log.warn(`sample ${describeWork(work)} not stored: ${(err as Error).message}`);
        }
      }
    }
  }

  /** Write the batch, retrying a failure a few times; false when it failed every time. */
  private async writeWithRetry(batch: SampleWork[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.write(batch);
        return true;
      } catch (err) {
        if (attempt >= WRITE_ATTEMPTS || this.closed) {
          this.log.warn(`${batch.length} samples not stored together (${(err as Error).message}); writing them one by one`);
          return false;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  private reject(reason: SampleRejectReason, deviceId: string, detail: string): void {
    this.metrics.samplesRejected.inc({ reason });
    this.log.debug(`sample from ${deviceId} refused (${reason}): ${detail}`);
  }

  private async knownBackbones(): Promise<Map<string, number | null>> {
    const now = Date.now();
    if (!this.backbones || now - this.backbones.at > BACKBONE_CACHE_MS) {
      this.backbones = { at: now, map: await this.repo.knownBackbones() };
    }
    return this.backbones.map;
  }

  private async write(batch: SampleWork[]): Promise<void> {
    const now = this.now();
    const backbones = await this.knownBackbones();
    const rows: NewSample[] = [];
    const labelAfter: Array<{ request: FrameRequestRow; deviceId: string; sampleId: string }> = [];
    const notHeld: string[] = [];
    const toStore = new Map<string, Buffer>();
    const quotaDevices = [...new Set(batch.filter((w) => w.kind === 'sample').map((w) => (w as { sample: Sample }).sample.deviceId))];
    const today = quotaDevices.length > 0 ? await this.repo.countsToday(quotaDevices, now) : new Map<string, number>();

    for (const work of batch) {
      let sample: Sample;
      let thumbnail: Buffer;
      let reason: StoredSampleReason;
      let request: FrameRequestRow | undefined;
      if (work.kind === 'reply') {
        request = await this.repo.frameRequest(work.requestId);
        if (!request || request.device_id !== work.deviceId) {
          this.reject('unknown_request', work.deviceId, `no frame request ${work.requestId} for this device`);
          continue;
        }
        // The answer must be the frame that was asked for, once: a device cannot put the
        // operator's label on another frame, nor answer the same request twice.
        if (work.frameId !== request.frame_id || (work.sample !== undefined && work.sample.frameId !== request.frame_id)) {
          this.reject('wrong_frame', work.deviceId, `frame request ${work.requestId} asked for frame ${request.frame_id}, the reply carries another`);
          continue;
        }
        if (request.status !== 'requested') {
          this.reject('already_answered', work.deviceId, `frame request ${work.requestId} was already answered (${request.status})`);
          continue;
        }
        this.metrics.frameReplies.inc({ status: work.status });
        if (work.status === 'not_held') {
          notHeld.push(work.requestId);
          continue;
        }
        sample = work.sample!;
        thumbnail = work.thumbnail!;
        reason = request.purpose === 'disagreement' ? 'disagreement' : 'requested';
      } else {
        sample = work.sample;
        thumbnail = work.thumbnail;
        reason = sample.reason;
        const used = today.get(sample.deviceId) ?? 0;
        if (used >= this.config.samplesPerDevicePerDay) {
          this.reject('quota', sample.deviceId, `${used} samples today (SAMPLES_PER_DEVICE_PER_DAY=${this.config.samplesPerDevicePerDay})`);
          continue;
        }
        today.set(sample.deviceId, used + 1);
      }
      if (!backbones.has(sample.backboneId)) {
        this.reject('unknown_backbone', sample.deviceId, `no model for backbone ${sample.backboneId}`);
        continue;
      }
      const dim = backbones.get(sample.backboneId);
      if (sample.bottleneck && dim != null && sample.bottleneck.dim !== dim) {
        this.reject('dimension_mismatch', sample.deviceId, `embedding of ${sample.bottleneck.dim} values, backbone ${sample.backboneId} has ${dim}`);
        continue;
      }
      const sha = { sha256: createHash('sha256').update(thumbnail).digest('hex'), bytes: thumbnail.length };
      toStore.set(sha.sha256, thumbnail);
      const u = uncertaintyOf(sample.prediction.topK);
      rows.push({
        device_id: sample.deviceId,
        sample_id: sample.sampleId,
        reason,
        request_id: work.kind === 'reply' ? work.requestId : null,
        frame_id: sample.frameId,
        site: sample.site,
        zone: zoneOfLocation(sample.location),
        location: sample.location,
        captured_at: sample.capturedAt,
        predicted_category: sample.prediction.category,
        predicted_confidence: sample.prediction.confidence,
        predicted_top_k: sample.prediction.topK,
        model_version: sample.prediction.modelVersion,
        backbone_id: sample.backboneId,
        embedding_b64: sample.bottleneck?.data ?? null,
        embedding_dim: sample.bottleneck?.dim ?? null,
        thumbnail_sha256: sha.sha256,
        thumbnail_bytes: sha.bytes,
        thumbnail_width: sample.thumbnail.width,
        thumbnail_height: sample.thumbnail.height,
        scored_margin: u.margin,
        scored_entropy: u.entropy,
        priority: PRIORITY[reason],
        expires_at: new Date(now.getTime() + this.config.sampleRetentionDays * 86_400_000).toISOString(),
      });
      if (request) labelAfter.push({ request, deviceId: sample.deviceId, sampleId: sample.sampleId });
    }

    // Thumbnails first (in parallel: each write is fsynced), so no row ever names a missing blob.
    await Promise.all([...toStore.values()].map((t) => this.blobs.put(t)));
    const inserted = await this.repo.insert(rows);
    for (const r of rows) {
      if (inserted.some((i) => i.device_id === r.device_id && i.sample_id === r.sample_id)) this.metrics.samplesStored.inc({ reason: r.reason });
      else this.metrics.samplesDuplicate.inc();
    }
    for (const l of labelAfter) {
      const id = await this.repo.idOf(l.deviceId, l.sampleId);
      if (id === undefined) continue;
      if (l.request.purpose === 'correction' && l.request.label) {
        await this.repo.label([id], l.request.label, l.request.corrected_by ?? 'anonymous', now);
      }
      await this.repo.answerFrameRequest(l.request.request_id, 'received', id);
    }
    for (const requestId of notHeld) await this.repo.answerFrameRequest(requestId, 'not_held', null);
  }
}

function describeWork(work: SampleWork): string {
  return work.kind === 'sample' ? `${work.sample.deviceId}/${work.sample.sampleId}` : `reply ${work.requestId} from ${work.deviceId}`;
}
