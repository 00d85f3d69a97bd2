import { z } from 'zod';
import { OfferPolicySchema, type OfferPolicy } from './rollout';

/**
 * A rollout's policy: how its head is judged before and after activation, and what a halt
 * does. Every rollout has a shadow gate and a health watch unless the operator turns one off
 * explicitly (`shadowGate: false` / `health: false`, with an `overrideReason` the hub audits
 * and shows on the rollout). Unset thresholds take {@link DEFAULT_ROLLOUT_POLICY}: this is the
 * one home of the defaults.
 *
 * The shadow gate is judged twice:
 * - by each device before it activates the head, on its own shadow run (`minAgreement`,
 *   `maxCategoryShift`, `minCandidateConfidence`: a device sees few frames, so these stop gross
 *   failures only);
 * - by the hub over the shadow runs of every device offered so far (the *predicted inventory
 *   change*): a stage halts when the share of shadowed frames whose category would change
 *   exceeds `maxPredictedChange`, or the share that would move from one category to one other
 *   exceeds `maxPairChange`. Devices ignore these two.
 */

const Share = z.number().min(0).max(1);

export const RolloutShadowGateSchema = z
  .object({
    minAgreement: Share.optional(),
    maxCategoryShift: Share.optional(),
    minCandidateConfidence: Share.optional(),
    /** Hub: most of the shadowed frames whose category would change (any pair). */
    maxPredictedChange: Share.optional(),
    /** Hub: most of the shadowed frames that would move from one category to one other ("milk → yogurt"). */
    maxPairChange: Share.optional(),
  })
  .strict();
export type RolloutShadowGate = z.infer<typeof RolloutShadowGateSchema>;

const HealthWatchSchema = OfferPolicySchema.shape.health.unwrap();
export type HealthWatch = z.infer<typeof HealthWatchSchema>;

/** What to do with the devices already running a version when its rollout halts. */
export const ON_HALT = ['rollback', 'hold'] as const;
export type OnHalt = (typeof ON_HALT)[number];

/** The policy an operator asks for (`POST /rollouts` `policy`); everything optional. */
export const RolloutPolicyInputSchema = z
  .object({
    /** Frames the candidate shadows on each device (absent: the device's own `--shadow-frames`). */
    shadowFrames: z.number().int().min(0).max(100_000).optional(),
    /** Thresholds over the defaults, or `false` (with `overrideReason`): no shadow gate. */
    shadowGate: z.union([RolloutShadowGateSchema, z.literal(false)]).optional(),
    /** Thresholds over the defaults, or `false` (with `overrideReason`): no health watch after activation. */
    health: z
      .union([
        z
          .object({ frames: z.number().int().min(1).max(100_000).optional(), maxLatencyRatio: z.number().min(1).max(1000).optional(), maxConfidenceDrop: Share.optional() })
          .strict(),
        z.literal(false),
      ])
      .optional(),
    /** `rollback` (default): a halt sends the devices already active on the version back to their previous one; `hold`: they keep it. */
    onHalt: z.enum(ON_HALT).optional(),
    /** Why the shadow gate or the health watch is off: required then (audited, shown on the rollout). */
    overrideReason: z.string().trim().min(3).max(500).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const off = [p.shadowGate === false && 'shadowGate', p.health === false && 'health'].filter(Boolean);
    if (off.length > 0 && !p.overrideReason) {
      ctx.addIssue({ code: 'custom', path: ['overrideReason'], message: `${off.join(' and ')} turned off: say why in overrideReason (it is audited)` });
    }
    if (p.shadowFrames === 0 && p.shadowGate !== false) {
      ctx.addIssue({ code: 'custom', path: ['shadowFrames'], message: 'a shadow gate needs shadow frames: shadowFrames ≥ 1, or shadowGate: false with an overrideReason' });
    }
  });
export type RolloutPolicyInput = z.infer<typeof RolloutPolicyInputSchema>;

/**
 * A rollout's policy as the hub stores and applies it: every default filled in. `shadowGate`
 * and `health` are `false` only when the operator turned them off (`overrideReason` says why),
 * or for rollouts created before gates were on by default.
 */
export const RolloutPolicySchema = z
  .object({
    shadowFrames: z.number().int().min(0).max(100_000).optional(),
    shadowGate: z.union([RolloutShadowGateSchema, z.literal(false)]),
    health: z.union([HealthWatchSchema, z.literal(false)]),
    onHalt: z.enum(ON_HALT),
    overrideReason: z.string().max(500).optional(),
  })
  .strict();
export type RolloutPolicy = z.infer<typeof RolloutPolicySchema>;

/** The defaults every rollout gets (the one home of them). */
export const DEFAULT_ROLLOUT_POLICY = {
  shadowGate: { minAgreement: 0.5, maxCategoryShift: 0.3, maxPredictedChange: 0.25, maxPairChange: 0.1 },
  health: { frames: 100, maxLatencyRatio: 3, maxConfidenceDrop: 0.15 },
  onHalt: 'rollback',
} as const satisfies Omit<RolloutPolicy, 'shadowFrames' | 'overrideReason'>;

/** The operator's policy with every default filled in. */
export function resolveRolloutPolicy(input: RolloutPolicyInput | undefined): RolloutPolicy {
  const p = input ?? {};
  const d = DEFAULT_ROLLOUT_POLICY;
  return {
    ...(p.shadowFrames !== undefined ? { shadowFrames: p.shadowFrames } : {}),
    shadowGate: p.shadowGate === false ? false : { ...d.shadowGate, ...defined(p.shadowGate ?? {}) },
    health: p.health === false ? false : { ...d.health, ...defined(p.health ?? {}) },
    onHalt: p.onHalt ?? d.onHalt,
    ...((p.shadowGate === false || p.health === false) && p.overrideReason ? { overrideReason: p.overrideReason } : {}),
  };
}

/**
 * A stored policy as the hub applies it. Rollouts created before gates were on by default
 * stored the offer policy as given, or nothing: they keep what they had (no gate, no watch,
 * devices held on a halt).
 */
export function storedRolloutPolicy(stored: unknown): RolloutPolicy {
  const now = RolloutPolicySchema.safeParse(stored);
  if (now.success) return now.data;
  const legacy = OfferPolicySchema.safeParse(stored ?? {});
  const p: OfferPolicy = legacy.success ? legacy.data : {};
  return {
    ...(p.shadowFrames !== undefined ? { shadowFrames: p.shadowFrames } : {}),
    shadowGate: p.shadowGate ?? false,
    health: p.health ?? false,
    onHalt: 'hold',
    overrideReason: 'created before rollouts had a shadow gate and health watch by default',
  };
}

/** What a device is told with its offer (the hub-side thresholds stay at the hub). */
export function offerPolicyOf(p: RolloutPolicy): OfferPolicy {
  const gate = p.shadowGate === false ? undefined : defined({ minAgreement: p.shadowGate.minAgreement, maxCategoryShift: p.shadowGate.maxCategoryShift, minCandidateConfidence: p.shadowGate.minCandidateConfidence });
  return {
    ...(p.shadowFrames !== undefined ? { shadowFrames: p.shadowFrames } : {}),
    ...(gate && Object.keys(gate).length > 0 ? { shadowGate: gate } : {}),
    ...(p.health === false ? {} : { health: p.health }),
  };
}

function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
