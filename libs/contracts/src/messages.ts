import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './topics';

/**
 * Payload schemas for every MQTT message, shared by hub and agent. Each payload
 * carries `v`, the schema version; a receiver rejects versions it does not know.
 */
export const SCHEMA_VERSION = 1 as const;

/**
 * Free text in a payload: length-bounded, and without NUL characters, which PostgreSQL
 * cannot store in text or jsonb (a payload carrying one would be accepted here and then
 * refused by every commit).
 */
export const boundedText = (min: number, max: number) => z.string().min(min).max(max).refine(hasNoNul, 'must not contain NUL characters');

/** True when `v` has no NUL character (the rule of {@link boundedText}). */
export function hasNoNul(v: string): boolean {
  return !v.includes('\u0000');
}

/**
 * Bounds of the detection fields, shared by the schema below and the batch fast path
 * (detection-batch-fast.ts), so the two cannot drift apart.
 */
export const DETECTION_LIMITS = { frameId: 128, modelVersion: 128, category: 64, site: 64, topK: 10 } as const;

export const DeviceIdSchema = z.string().regex(DEVICE_ID_PATTERN, 'device id: letters, digits, _ . - (max 64)');

/** Location code aisle-rack-shelf-bin, e.g. `A-03-2-B`. */
export const LOCATION_CODE_PATTERN = /^[A-Z0-9]{1,4}-[A-Z0-9]{1,4}-[A-Z0-9]{1,4}-[A-Z0-9]{1,4}$/;
export const LocationCodeSchema = z.string().regex(LOCATION_CODE_PATTERN, 'location code like A-03-2-B');

/** The zone of a location is its aisle, the first segment of the code. */
export function zoneOfLocation(code: string): string {
  return code.split('-')[0] ?? code;
}

/**
 * A device's sequence epoch: chosen at random when its outbox is created, kept for the
 * outbox's life. Sequence numbers are unique per (device, epoch), so a device whose
 * storage was wiped or replaced starts a new epoch at seq 1 instead of having its new
 * detections taken for repeats of old ones.
 */
export const EPOCH_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const EpochSchema = z.string().regex(EPOCH_PATTERN, 'epoch: letters, digits, _ - (max 64)');

export const SITE_PATTERN = /^[A-Za-z0-9_.-]+$/;
export const SiteSchema = z.string().min(1).max(DETECTION_LIMITS.site).regex(SITE_PATTERN, 'letters, digits, _ . - only');
export const CategorySchema = boundedText(1, DETECTION_LIMITS.category);
const IsoTime = z.iso.datetime({ offset: true });
/** Longest classification latency a detection may report (an hour; PostgreSQL's real holds far more, but not any number). */
export const MAX_LATENCY_MS = 3_600_000;
const Confidence = z.number().min(0).max(1);

export const ScoredCategorySchema = z.object({
  category: CategorySchema,
  confidence: Confidence,
});
export type ScoredCategory = z.infer<typeof ScoredCategorySchema>;

export const DetectionSchema = z.object({
  /** Sequence number, strictly increasing within the device's epoch, starting at 1. */
  seq: z.number().int().positive(),
  /** Stable id of the captured frame; a frame classified twice keeps its id. */
  frameId: boundedText(1, DETECTION_LIMITS.frameId),
  site: SiteSchema,
  location: LocationCodeSchema,
  capturedAt: IsoTime,
  category: CategorySchema,
  confidence: Confidence,
  topK: z.array(ScoredCategorySchema).max(DETECTION_LIMITS.topK),
  modelVersion: boundedText(1, DETECTION_LIMITS.modelVersion),
  latencyMs: z.number().min(0).max(MAX_LATENCY_MS),
});
export type Detection = z.infer<typeof DetectionSchema>;

export const MAX_DETECTIONS_PER_BATCH = 500;

/**
 * Capture times before this are refused: no device photographed a shelf then, and
 * PostgreSQL refuses some of them (year 0), which would make the batch's commit fail
 * on every retry.
 */
export const EARLIEST_CAPTURE_YEAR = '1970';

/**
 * The batch-wide rules beyond each detection's own (both validation paths apply this one
 * function): no capture before EARLIEST_CAPTURE_YEAR, no seq twice. The first issue, or
 * undefined.
 */
export function detectionBatchIssue(detections: ReadonlyArray<{ seq: number; capturedAt: string }>): string | undefined {
  const seen = new Set<number>();
  for (const d of detections) {
    if (d.capturedAt.slice(0, 4) < EARLIEST_CAPTURE_YEAR) return `capturedAt ${d.capturedAt} is before ${EARLIEST_CAPTURE_YEAR}`;
    if (seen.has(d.seq)) return `duplicate seq ${d.seq} in batch`;
    seen.add(d.seq);
  }
  return undefined;
}

export const DetectionBatchSchema = z
  .object({
    v: z.literal(SCHEMA_VERSION),
    deviceId: DeviceIdSchema,
    /** The outbox epoch the seqs belong to. */
    epoch: EpochSchema,
    sentAt: IsoTime,
    detections: z.array(DetectionSchema).min(1).max(MAX_DETECTIONS_PER_BATCH),
  })
  .superRefine((batch, ctx) => {
    const issue = detectionBatchIssue(batch.detections);
    if (issue) ctx.addIssue({ code: 'custom', message: issue, path: ['detections'] });
  });
export type DetectionBatch = z.infer<typeof DetectionBatchSchema>;

/** Longest back-off a hub may ask of a device (an ack's `retryAfterMs`). */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Hub → device: these sequence numbers (of this epoch) are committed and may be deleted from
 * the outbox. Flow control (optional fields; an agent that does not know them ignores them):
 * - `window`: detections this device may have published and unacknowledged from now on;
 * - `deferred`: sequence numbers the hub did not take (it is over capacity): still the
 *   device's, to publish again, not before `retryAfterMs`;
 * - `retryAfterMs`: publish nothing new for this long (the device adds jitter).
 * `seqs` is empty only in an ack that defers (a flow-control-only message; agents from
 * before flow control count it as malformed and ignore it, and resend after their timeout).
 */
export const AckSchema = z
  .object({
    v: z.literal(SCHEMA_VERSION),
    deviceId: DeviceIdSchema,
    epoch: EpochSchema,
    seqs: z.array(z.number().int().positive()),
    committedAt: IsoTime,
    window: z.number().int().min(0).max(1_000_000).optional(),
    deferred: z.array(z.number().int().positive()).max(MAX_DETECTIONS_PER_BATCH * 4).optional(),
    retryAfterMs: z.number().int().min(0).max(MAX_RETRY_AFTER_MS).optional(),
  })
  .refine((a) => a.seqs.length > 0 || (a.deferred?.length ?? 0) > 0, { message: 'an ack names committed or deferred seqs', path: ['seqs'] });
export type Ack = z.infer<typeof AckSchema>;

export const DEVICE_KINDS = ['robot', 'drone', 'camera', 'sim'] as const;

export const BirthSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  deviceId: DeviceIdSchema,
  kind: z.enum(DEVICE_KINDS),
  site: SiteSchema,
  agentVersion: boundedText(1, 64),
  backboneId: boundedText(1, 128),
  modelVersion: boundedText(1, 128),
  startedAt: IsoTime,
  /** The outbox's sequence epoch; a new one means the device's storage was reset. */
  epoch: EpochSchema,
});
export type Birth = z.infer<typeof BirthSchema>;

/** Sent by the agent on clean shutdown (`shutdown`) and registered as its MQTT last will (`lost`). */
export const DeathSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  deviceId: DeviceIdSchema,
  reason: z.enum(['shutdown', 'lost']),
});
export type Death = z.infer<typeof DeathSchema>;

export const HeartbeatSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  deviceId: DeviceIdSchema,
  sentAt: IsoTime,
  uptimeS: z.number().min(0),
  framesPerS: z.number().min(0),
  p95LatencyMs: z.number().min(0),
  queueDepth: z.number().int().min(0),
  outboxDepth: z.number().int().min(0),
  outboxBytes: z.number().int().min(0),
  diskFreeBytes: z.number().int().min(0).optional(),
  /** Version of the head classifying frames now (it may differ from the birth's after a rollout). */
  activeModelVersion: z.string().min(1).max(128).optional(),
  /** A head loaded beside the active one (see rollout.ts), if any, and how far it got. */
  candidate: z
    .object({
      modelVersion: z.string().min(1).max(128),
      state: z.enum(['downloading', 'verified', 'shadowing']),
      /** Shadowing: frames scored so far and the frames the shadow runs for. */
      shadowFrames: z.number().int().min(0).optional(),
      shadowTarget: z.number().int().min(0).optional(),
    })
    .optional(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

/** Published by each hub on {@link HUB_STATUS_TOPIC} once it is subscribed (at start and after every reconnect). */
export const HubStatusSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  hubId: boundedText(1, 128),
  status: z.literal('online'),
  at: IsoTime,
});
export type HubStatus = z.infer<typeof HubStatusSchema>;
