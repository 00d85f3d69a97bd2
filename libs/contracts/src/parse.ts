import type { z } from 'zod';

/** Why a payload was refused; these are also the `reason` label of the rejection counter. */
export type RejectReason = 'invalid_json' | 'schema' | 'device_mismatch' | 'unknown_topic';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: RejectReason; message: string };

/**
 * Decode and validate one MQTT payload. Accepts a raw buffer/string (JSON) or an
 * already-decoded value (what the Nest MQTT transport hands to handlers).
 */
export function parsePayload<S extends z.ZodType>(schema: S, raw: unknown): ParseResult<z.infer<S>> {
  const decoded = decodeJson(raw);
  return decoded.ok ? validatePayload(schema, decoded.value) : decoded;
}

/** The one JSON decode of payloads: a buffer or string is parsed, anything else is taken as already decoded. */
export function decodeJson(raw: unknown): ParseResult<unknown> {
  let value: unknown = raw;
  if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) value = Buffer.from(raw).toString('utf8');
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return { ok: false, reason: 'invalid_json', message: 'payload is not valid JSON' };
    }
  }
  return { ok: true, value };
}

/** Validate a decoded payload against its schema; a refusal names the first issues. */
export function validatePayload<S extends z.ZodType>(schema: S, value: unknown): ParseResult<z.infer<S>> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { ok: false, reason: 'schema', message: first.join('; ') };
  }
  return { ok: true, value: result.data };
}

/** Encode a payload for publishing; validates first so a device never sends what the hub would refuse. */
export function encodePayload<S extends z.ZodType>(schema: S, value: z.infer<S>): Buffer {
  const parsed = schema.parse(value);
  return Buffer.from(JSON.stringify(parsed));
}
