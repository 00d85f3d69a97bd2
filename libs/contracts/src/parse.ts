import type { z } from 'zod';

/** Why a payload was refused; these are also the `reason` label of the rejection counter. */
export type RejectReason = 'invalid_json' | 'schema' | 'device_mismatch' | 'unknown_topic';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: RejectReason; message: string };

/**
 * Decode and validate one MQTT payload. Accepts a raw buffer/string (JSON) or an
 * already-decoded value (what the Nest MQTT transport hands to handlers).
 */
export function parsePayload<S extends z.ZodType>(schema: S, raw: unknown): ParseResult<z.infer<S>> {
  let value: unknown = raw;
  if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) value = Buffer.from(raw).toString('utf8');
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return { ok: false, reason: 'invalid_json', message: 'payload is not valid JSON' };
    }
  }
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
