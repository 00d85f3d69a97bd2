import { z } from 'zod';

/** The PostgreSQL channel every hub replica of one database LISTENs on. */
export const CLUSTER_CHANNEL = 'shelfsight_cluster';

/**
 * The most bytes one NOTIFY payload may carry: PostgreSQL refuses payloads of 8000 bytes
 * and more (its default build); a little is kept back for the envelope's own fields.
 */
export const MAX_PAYLOAD_BYTES = 7900;

/** One message between replicas: what it is about (`kind`) and a small JSON body (ids, not bulk). */
export interface ClusterMessage {
  kind: string;
  body: unknown;
}

const EnvelopeSchema = z.object({
  /** Wire version. */
  v: z.literal(1),
  /** The sending replica's id: a replica ignores what it sent itself. */
  o: z.string().min(1).max(64),
  m: z.array(z.object({ k: z.string().min(1).max(64), b: z.unknown() })),
});

const envelopeBytes = (origin: string): number => Buffer.byteLength(JSON.stringify({ v: 1, o: origin, m: [] }));
const messageJson = (m: ClusterMessage): string => JSON.stringify({ k: m.kind, b: m.body });

/** Whether a message fits one NOTIFY on its own (else it must be sent as a reference). */
export function fitsOneNotify(origin: string, message: ClusterMessage): boolean {
  return envelopeBytes(origin) + Buffer.byteLength(messageJson(message)) <= MAX_PAYLOAD_BYTES;
}

/**
 * Packs messages, in order, into as few NOTIFY payloads as fit {@link MAX_PAYLOAD_BYTES}.
 * A message too big for a payload of its own is returned in `oversize`, not sent.
 */
export function encodeBatch(origin: string, messages: readonly ClusterMessage[]): { payloads: string[]; oversize: ClusterMessage[] } {
  const base = envelopeBytes(origin);
  const payloads: string[] = [];
  const oversize: ClusterMessage[] = [];
  let parts: string[] = [];
  let size = base;
  const close = () => {
    if (parts.length === 0) return;
    payloads.push(`{"v":1,"o":${JSON.stringify(origin)},"m":[${parts.join(',')}]}`);
    parts = [];
    size = base;
  };
  for (const m of messages) {
    const json = messageJson(m);
    const bytes = Buffer.byteLength(json);
    if (base + bytes > MAX_PAYLOAD_BYTES) {
      oversize.push(m);
      continue;
    }
    // +1 for the comma between messages.
    if (size + bytes + (parts.length > 0 ? 1 : 0) > MAX_PAYLOAD_BYTES) close();
    size += bytes + (parts.length > 0 ? 1 : 0);
    parts.push(json);
  }
  close();
  return { payloads, oversize };
}

/**
 * The messages of a NOTIFY payload from another replica; none for this replica's own
 * (`self`: it delivered them when it sent them), and an error for a payload that is not ours.
 */
export function decodePayload(self: string, payload: string): { origin: string; messages: ClusterMessage[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(payload);
  } catch {
    throw new Error('cluster message is not JSON');
  }
  const parsed = EnvelopeSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`cluster message malformed: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const { o, m } = parsed.data;
  if (o === self) return { origin: o, messages: [] };
  return { origin: o, messages: m.map((x) => ({ kind: x.k, body: x.b })) };
}
