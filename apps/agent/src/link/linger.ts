/** What the link knows when it decides whether to publish a batch now. */
export interface LingerState {
  /** Detections ready to publish (durable, not in flight). */
  unsent: number;
  /** How long the oldest of them has waited, ms (retransmissions count as having waited forever). */
  oldestAgeMs: number;
  /** Detections the in-flight window still takes. */
  room: number;
  batchSize: number;
  lingerMs: number;
}

/** Publish `take` detections now; or wait `waitMs` for more (the linger); or nothing to do until acks make room. */
export type LingerDecision = { take: number } | { waitMs: number } | { blocked: true };

/**
 * The link's linger: a device at a few frames per second would otherwise publish one
 * message per detection, and per-message costs (broker, hub decode, ack) dominate. A
 * batch goes out when `batchSize` detections are ready or when the oldest has waited
 * `lingerMs`, whichever first. With too little window for a full batch it waits for
 * acks to make room, until the linger expires; then it sends what fits.
 */
export function lingerDecision(s: LingerState): LingerDecision {
  if (s.unsent <= 0) return { take: 0 };
  if (s.room <= 0) return { blocked: true };
  const full = Math.min(s.batchSize, s.unsent);
  const expired = s.oldestAgeMs >= s.lingerMs;
  if (s.room >= full && (s.unsent >= s.batchSize || expired)) return { take: full };
  if (expired) return { take: Math.min(s.room, full) };
  // Not expired: too few for a batch, or too little room for one (an ack may come first).
  return { waitMs: s.lingerMs - s.oldestAgeMs };
}
