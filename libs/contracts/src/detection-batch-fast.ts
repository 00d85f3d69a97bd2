import {
  DETECTION_LIMITS,
  DetectionBatchSchema,
  detectionBatchIssue,
  DetectionSchema,
  EPOCH_PATTERN,
  hasNoNul,
  LOCATION_CODE_PATTERN,
  MAX_DETECTIONS_PER_BATCH,
  MAX_LATENCY_MS,
  SCHEMA_VERSION,
  SITE_PATTERN,
  type DetectionBatch,
} from './messages';
import { decodeJson, validatePayload, type ParseResult } from './parse';
import { DEVICE_ID_PATTERN } from './topics';

/** The exact pattern zod checks ISO times with (the schema's own), so both paths agree. */
const ISO_TIME = DetectionSchema.shape.capturedAt.def.pattern;

const BATCH_KEYS = 5; // v, deviceId, epoch, sentAt, detections
const DETECTION_KEYS = 10; // seq, frameId, site, location, capturedAt, category, confidence, topK, modelVersion, latencyMs
const SCORED_KEYS = 2; // category, confidence

/**
 * Decode and validate a detection batch, as `parsePayload(DetectionBatchSchema, raw)`
 * does (the same JSON decode, the same bounds, patterns and batch-wide rules from
 * messages.ts), cheaper for the common case: a batch that is exactly what the schema describes
 * (every field valid, no other keys anywhere) is checked by hand and returned as it is;
 * anything else goes through the zod schema, which then accepts (stripping unknown keys)
 * or refuses with its message. So both paths accept and refuse the same inputs, and the
 * fast one only ever says yes to what zod would return unchanged (tested side by side).
 */
export function parseDetectionBatch(raw: unknown): ParseResult<DetectionBatch> {
  const decoded = decodeJson(raw);
  if (!decoded.ok) return decoded;
  if (isExactDetectionBatch(decoded.value)) return { ok: true, value: decoded.value };
  return validatePayload(DetectionBatchSchema, decoded.value);
}

/** True only for a batch the schema accepts and returns unchanged; false says nothing (ask zod). */
export function isExactDetectionBatch(value: unknown): value is DetectionBatch {
  if (ISO_TIME === undefined || !isRecord(value) || Object.keys(value).length !== BATCH_KEYS) return false;
  const { v, deviceId, epoch, sentAt, detections } = value;
  if (v !== SCHEMA_VERSION) return false;
  if (typeof deviceId !== 'string' || !DEVICE_ID_PATTERN.test(deviceId)) return false;
  if (typeof epoch !== 'string' || !EPOCH_PATTERN.test(epoch)) return false;
  if (typeof sentAt !== 'string' || !ISO_TIME.test(sentAt)) return false;
  if (!Array.isArray(detections) || detections.length < 1 || detections.length > MAX_DETECTIONS_PER_BATCH) return false;
  for (const d of detections as unknown[]) if (!isExactDetection(d)) return false;
  return detectionBatchIssue(detections as Array<{ seq: number; capturedAt: string }>) === undefined;
}

function isExactDetection(d: unknown): d is { seq: number; capturedAt: string } {
  if (!isRecord(d) || Object.keys(d).length !== DETECTION_KEYS) return false;
  const { seq, frameId, site, location, capturedAt, category, confidence, topK, modelVersion, latencyMs } = d;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq <= 0) return false;
  if (!isString(frameId, DETECTION_LIMITS.frameId) || !isString(modelVersion, DETECTION_LIMITS.modelVersion) || !isString(category, DETECTION_LIMITS.category)) return false;
  if (!isString(site, DETECTION_LIMITS.site) || !SITE_PATTERN.test(site)) return false;
  if (typeof location !== 'string' || !LOCATION_CODE_PATTERN.test(location)) return false;
  if (typeof capturedAt !== 'string' || !ISO_TIME!.test(capturedAt)) return false;
  if (!isUnit(confidence)) return false;
  if (typeof latencyMs !== 'number' || !Number.isFinite(latencyMs) || latencyMs < 0 || latencyMs > MAX_LATENCY_MS) return false;
  if (!Array.isArray(topK) || topK.length > DETECTION_LIMITS.topK) return false;
  for (const s of topK as unknown[]) {
    if (!isRecord(s) || Object.keys(s).length !== SCORED_KEYS || !isString(s.category, DETECTION_LIMITS.category) || !isUnit(s.confidence)) return false;
  }
  return true;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && Object.getPrototypeOf(x) === Object.prototype;
}

/** A non-empty text of at most `max` characters, as `boundedText(1, max)` (and SiteSchema's length) accept. */
function isString(x: unknown, max: number): x is string {
  return typeof x === 'string' && x.length >= 1 && x.length <= max && hasNoNul(x);
}

function isUnit(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1;
}
