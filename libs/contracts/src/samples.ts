import { z } from 'zod';
import {
  CategorySchema,
  DeviceIdSchema,
  LocationCodeSchema,
  SCHEMA_VERSION,
  ScoredCategorySchema,
  SiteSchema,
  boundedText,
} from './messages';

/**
 * Samples for learning: frames the agent was unsure about (low confidence, small
 * top-2 margin), picked by a random audit, or requested by the hub when an operator
 * corrects a detection. Sent best effort (not through the durable outbox) and
 * rate-limited on the device, so they never delay detections.
 */
export const SAMPLE_REASONS = ['low_confidence', 'small_margin', 'audit', 'requested'] as const;
export type SampleReason = (typeof SAMPLE_REASONS)[number];

/** Largest base64 thumbnail accepted (≈ 512 KiB of JPEG). */
export const MAX_THUMBNAIL_BASE64 = 700_000;

export const ThumbnailSchema = z.object({
  mime: z.literal('image/jpeg'),
  width: z.number().int().positive().max(4096),
  height: z.number().int().positive().max(4096),
  /** JPEG bytes, base64. */
  data: z.base64().max(MAX_THUMBNAIL_BASE64),
});
export type Thumbnail = z.infer<typeof ThumbnailSchema>;

/** The backbone's feature vector for the frame: float32 little-endian, base64. */
export const BottleneckSchema = z.object({
  dim: z.number().int().positive().max(65_536),
  encoding: z.literal('f32le-base64'),
  data: z.base64(),
});
export type Bottleneck = z.infer<typeof BottleneckSchema>;

export const SampleSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  deviceId: DeviceIdSchema,
  /** Unique per device: `${frameId}:${reason}`. */
  sampleId: boundedText(1, 160),
  reason: z.enum(SAMPLE_REASONS),
  /** Set when the sample answers a frame request. */
  requestId: boundedText(1, 128).optional(),
  frameId: boundedText(1, 128),
  /** Sequence number of the frame's detection. */
  seq: z.number().int().positive().optional(),
  site: SiteSchema,
  location: LocationCodeSchema,
  capturedAt: z.iso.datetime({ offset: true }),
  prediction: z.object({
    category: CategorySchema,
    confidence: z.number().min(0).max(1),
    topK: z.array(ScoredCategorySchema).max(10),
    modelVersion: boundedText(1, 128),
  }),
  backboneId: boundedText(1, 128),
  thumbnail: ThumbnailSchema,
  bottleneck: BottleneckSchema.optional(),
  sentAt: z.iso.datetime({ offset: true }),
});
export type Sample = z.infer<typeof SampleSchema>;

/** Hub → device: "send me frame X" (an operator corrected its detection). */
export const FrameRequestSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  deviceId: DeviceIdSchema,
  requestId: boundedText(1, 128),
  frameId: boundedText(1, 128),
});
export type FrameRequest = z.infer<typeof FrameRequestSchema>;

/** Device → hub: the requested frame as a sample (`ok`), or `not_held` when it left the device's ring buffer. */
export const FrameReplySchema = z
  .object({
    v: z.literal(SCHEMA_VERSION),
    deviceId: DeviceIdSchema,
    requestId: boundedText(1, 128),
    frameId: boundedText(1, 128),
    status: z.enum(['ok', 'not_held']),
    sample: SampleSchema.optional(),
    message: boundedText(0, 256).optional(),
  })
  .refine((r) => (r.status === 'ok') === (r.sample !== undefined), { message: 'sample is required exactly when status is ok', path: ['sample'] });
export type FrameReply = z.infer<typeof FrameReplySchema>;

/** Encode a feature vector for {@link BottleneckSchema}. */
export function encodeBottleneck(v: Float32Array): Bottleneck {
  const buf = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i] as number, i * 4);
  return { dim: v.length, encoding: 'f32le-base64', data: buf.toString('base64') };
}

/** Decode a {@link BottleneckSchema} value back to floats. */
export function decodeBottleneck(b: Bottleneck): Float32Array {
  const buf = Buffer.from(b.data, 'base64');
  if (buf.length !== b.dim * 4) throw new Error(`bottleneck: expected ${b.dim * 4} bytes, got ${buf.length}`);
  const out = new Float32Array(b.dim);
  for (let i = 0; i < b.dim; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

/** A stored embedding (`samples.embedding`: dim float32 values, little-endian) as floats. */
export function embeddingFromBytesLE(bytes: Uint8Array, dim: number): Float32Array {
  if (bytes.byteLength !== dim * 4) throw new Error(`embedding is ${bytes.byteLength} bytes, expected ${dim * 4} for dim ${dim}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(dim);
  for (let i = 0; i < dim; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
