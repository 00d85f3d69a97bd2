import { z } from 'zod';
import { CategorySchema, DeviceIdSchema, SCHEMA_VERSION, type Heartbeat } from './messages';

/**
 * Fleet rollouts: the hub offers a classifier head to a device as a signed manifest (in the
 * spirit of TUF/Uptane targets metadata), the device downloads the artifact over HTTP,
 * verifies it against the manifest, shadows it beside its active head and activates it, and
 * reports every step on `rollout-status`. Signing and verification: `rollout-signing.ts`.
 */

const IsoTime = z.iso.datetime({ offset: true });
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256: 64 lowercase hex digits');

/** Largest head artifact a device accepts (a head is a few MB; the backbone never travels). */
export const MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;

/**
 * The signed part of an offer. Fields:
 * - `modelVersion`: the registry version the head carries (detections name it once active).
 * - `offerId`: the offer this manifest belongs to (the hub's rollout id); a device refuses an
 *   offer whose `offerId` is not this one, so an offer id can never be borrowed by a forgery.
 * - `modelLine`: the line of heads this release belongs to, within its backbone (the hub's
 *   registry has one line per backbone, {@link DEFAULT_MODEL_LINE}).
 * - `releaseCounter`: increases with every release of one (backbone, model line), whatever its
 *   label list; a device refuses a counter not above the newest it activated for that line
 *   (replay of an old manifest, also one for another label list).
 * - `backbone`: the "hardware id" of a head; a device refuses a head for another backbone.
 * - `labelsHash`: {@link labelsHash} of the head's label list, in output order.
 * - `artifact`: sha256 and exact length of the artifact file; nothing more is ever read.
 * - `expiresAt`: a device refuses the manifest from this instant on.
 * - `keyId`: {@link keyIdOf} the signing key (devices may trust several, for rotation).
 */
export const RolloutManifestSchema = z
  .object({
    v: z.literal(SCHEMA_VERSION),
    modelVersion: z.string().min(1).max(128),
    offerId: z.string().min(1).max(128),
    modelLine: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'model line: letters, digits, _ . -'),
    releaseCounter: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    backbone: z.object({ id: z.string().min(1).max(128), checksum: Sha256Hex }).strict(),
    labelsHash: Sha256Hex,
    artifact: z.object({ sha256: Sha256Hex, length: z.number().int().positive().max(MAX_ARTIFACT_BYTES) }).strict(),
    issuedAt: IsoTime,
    expiresAt: IsoTime,
    keyId: Sha256Hex,
  })
  .strict()
  .refine((m) => Date.parse(m.expiresAt) > Date.parse(m.issuedAt), { message: 'expiresAt must be after issuedAt', path: ['expiresAt'] });
export type RolloutManifest = z.infer<typeof RolloutManifestSchema>;

/** The model line of every head the hub's registry releases (one line per backbone). */
export const DEFAULT_MODEL_LINE = 'default';

/** A manifest with its Ed25519 signature over `canonicalJson(manifest)`, base64. */
export const SignedManifestSchema = z.object({
  manifest: RolloutManifestSchema,
  signature: z.base64().length(88, 'Ed25519 signature: 64 bytes, base64'),
});
export type SignedManifest = z.infer<typeof SignedManifestSchema>;

/**
 * Path of the artifact on the hub's HTTP server, relative to the device's hub base URL:
 * absolute path, no scheme or host, no `..`, no query, so an offer can never point a device
 * at another server.
 */
export const ArtifactPathSchema = z
  .string()
  .max(512)
  .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'artifact path: /-rooted, letters, digits, . _ ~ - /')
  .refine((p) => !p.split('/').includes('..'), 'artifact path may not contain ..');

const Share = z.number().min(0).max(1);

/**
 * How the device judges an offered head before and after activating it (the rollout's stage
 * settings, chosen by the operator; not part of the signed manifest: they decide *whether* a
 * device runs a head the hub signed, never *which* head).
 * - `shadowFrames`: frames the candidate runs beside the active head before activation.
 * - `shadowGate`: the device refuses to activate (`rejected`, reason `shadow_gate`) when the
 *   shadow run shows agreement below `minAgreement`, or any category whose share of the shadowed
 *   frames would change by more than `maxCategoryShift` (|candidate − active| ÷ frames), or a
 *   candidate mean confidence below `minCandidateConfidence`.
 * - `health`: after activation the device watches `frames` frames; p95 latency above
 *   `maxLatencyRatio` × the previous head's (measured during the shadow run) or a mean top-1
 *   confidence that fell by more than `maxConfidenceDrop` rolls it back by itself
 *   (`rolled_back`, reason `health_regression`). Passing sends a second `active` status with
 *   `health`.
 */
export const OfferPolicySchema = z
  .object({
    shadowFrames: z.number().int().min(0).max(100_000).optional(),
    shadowGate: z
      .object({ minAgreement: Share.optional(), maxCategoryShift: Share.optional(), minCandidateConfidence: Share.optional() })
      .strict()
      .optional(),
    health: z
      .object({
        frames: z.number().int().min(1).max(100_000),
        maxLatencyRatio: z.number().min(1).max(1000).optional(),
        maxConfidenceDrop: Share.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type OfferPolicy = z.infer<typeof OfferPolicySchema>;

/** Hub → device on `model-offer`: install this head (the device decides whether it may). */
export const ModelOfferSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  deviceId: DeviceIdSchema,
  /** Names the offer in status reports (the hub's rollout id); must equal the signed `manifest.offerId`. */
  offerId: z.string().min(1).max(128),
  signed: SignedManifestSchema,
  artifactPath: ArtifactPathSchema,
  offeredAt: IsoTime,
  /** Absent: the device's own defaults (its `--shadow-frames`, no gate, no health watch). */
  policy: OfferPolicySchema.optional(),
  /**
   * A short-lived bearer token for this device and version's artifact (the hub's HMAC; opaque
   * to the device): sent as `Authorization: Bearer <token>` it spares the hub a password check
   * per download. Absent, expired or refused (401): the device credential (HTTP basic) instead.
   */
  downloadToken: z.string().min(1).max(512).regex(/^[A-Za-z0-9._~-]+$/, 'download token: letters, digits, . _ ~ -').optional(),
});
export type ModelOffer = z.infer<typeof ModelOfferSchema>;

export const ROLLOUT_STATES = ['offered', 'downloading', 'verified', 'shadowing', 'active', 'rejected', 'rolled_back'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** Why a device refused an offered head; also the `reason` label of `shelf_agent_model_rejected_total`. */
export const MODEL_REJECT_REASONS = [
  'malformed',
  'bad_signature',
  'unknown_key',
  'expired',
  'replayed_counter',
  'foreign_backbone',
  'hash_mismatch',
  'length_mismatch',
  'download_failed',
  'load_failed',
  /** The shadow run broke the offer's `policy.shadowGate`. */
  'shadow_gate',
  /** After activation the head broke the offer's `policy.health` thresholds (device rolled back by itself). */
  'health_regression',
  /** The hub commanded it (`model-command`: rollback of an active head, cancel of a candidate). */
  'operator',
  /** The same offer was rolled back on this device before; it is not installed again. */
  'rolled_back_before',
  /** The offer's `offerId` is not the one its signed manifest names (a borrowed rollout id). */
  'offer_mismatch',
] as const;
export type ModelRejectReason = (typeof MODEL_REJECT_REASONS)[number];

/**
 * Refusals that mean the offer is not what the hub sent (not signed by a current release key,
 * tampered, a borrowed offer id, a replayed older release): a device reports them, but the hub
 * counts them as attacks, never against the rollout whose id the offer carries.
 */
export const UNVERIFIED_OFFER_REASONS: readonly ModelRejectReason[] = ['malformed', 'bad_signature', 'unknown_key', 'offer_mismatch', 'replayed_counter'];

/** Whether a device's status reports an offer that failed verification (an attack, not a rollout failure). */
export function isUnverifiedOfferStatus(status: { state: string; reason?: ModelRejectReason }): boolean {
  return status.state === 'rejected' && status.reason !== undefined && UNVERIFIED_OFFER_REASONS.includes(status.reason);
}

/** Number of equal-width confidence bins over [0, 1] in {@link ShadowStats}. */
export const SHADOW_HISTOGRAM_BINS = 10;
/** Most (from → to) pairs a shadow report lists (the rest of the changed frames are in `agreement`). */
export const MAX_SHADOW_PAIRS = 1000;

/** What the candidate head would have done beside the active one on the same frames. */
export const ShadowStatsSchema = z.object({
  frames: z.number().int().min(0),
  /** Share of frames where both heads picked the same top category. */
  agreement: z.number().min(0).max(1),
  activeMeanConfidence: z.number().min(0).max(1),
  candidateMeanConfidence: z.number().min(0).max(1),
  /** Top-1 confidence counts per bin, bin i = [i/B, (i+1)/B), the last one closed. */
  histogram: z.object({
    active: z.array(z.number().int().min(0)).length(SHADOW_HISTOGRAM_BINS),
    candidate: z.array(z.number().int().min(0)).length(SHADOW_HISTOGRAM_BINS),
  }),
  /** Per category: frames each head would have put into inventory under it. */
  categories: z.record(CategorySchema, z.object({ active: z.number().int().min(0), candidate: z.number().int().min(0) })),
  /**
   * The frames on which the heads disagreed, per (active category → candidate category) pair,
   * most frames first: what the hub pools into the predicted inventory change. Absent from
   * agents that predate it (the hub then knows only how many frames changed, from `agreement`).
   */
  changes: z
    .array(z.object({ from: CategorySchema, to: CategorySchema, frames: z.number().int().min(1) }).strict())
    .max(MAX_SHADOW_PAIRS)
    .optional(),
});
export type ShadowStats = z.infer<typeof ShadowStatsSchema>;

/** What the active head did after activation, beside the previous head's figures from the shadow run. */
export const HealthStatsSchema = z.object({
  frames: z.number().int().min(0),
  p95LatencyMs: z.number().min(0),
  meanConfidence: z.number().min(0).max(1),
  baseline: z.object({ p95LatencyMs: z.number().min(0), meanConfidence: z.number().min(0).max(1) }),
});
export type HealthStats = z.infer<typeof HealthStatsSchema>;

/**
 * Hub → device on `model-command` (QoS 1, not retained), signed by a release key like a
 * manifest (Ed25519 over the canonical JSON of every field but `signature`): it names its
 * device, expires at `expiresAt`, and carries a random `nonce` a device accepts once, so a
 * command can be neither forged, sent to another device, nor replayed. `rollback` returns a device whose
 * active head is `modelVersion` to the head it ran before (kept on the device, verified again);
 * `cancel` drops `modelVersion` if it is still a candidate (downloading, verified, shadowing).
 * Either way the device reports `rolled_back`/`rejected` with reason `operator` on
 * `rollout-status`, and remembers the offer so the same offer is not installed again.
 * Anything else (another version active, nothing to cancel) is answered with the device's
 * current state. The hub also clears the retained offer, so a reconnect does not bring it back.
 */
export const ModelCommandSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  deviceId: DeviceIdSchema,
  offerId: z.string().min(1).max(128),
  command: z.enum(['rollback', 'cancel']),
  modelVersion: z.string().min(1).max(128),
  issuedAt: IsoTime,
  expiresAt: IsoTime,
  nonce: z.string().regex(/^[0-9a-f]{32}$/, 'nonce: 32 lowercase hex digits'),
  keyId: Sha256Hex,
  signature: z.base64().length(88, 'Ed25519 signature: 64 bytes, base64'),
});
export type ModelCommand = z.infer<typeof ModelCommandSchema>;

/** Device → hub on `rollout-status`: what became of an offer. */
export const RolloutStatusSchema = z
  .object({
    v: z.literal(SCHEMA_VERSION),
    deviceId: DeviceIdSchema,
    offerId: z.string().min(1).max(128),
    modelVersion: z.string().min(1).max(128),
    state: z.enum(ROLLOUT_STATES),
    at: IsoTime,
    /** `rejected` and `rolled_back`: why. */
    reason: z.enum(MODEL_REJECT_REASONS).optional(),
    detail: z.string().max(512).optional(),
    /** The version the device runs after this step. */
    activeVersion: z.string().min(1).max(128),
    /** `shadowing` (progress) and `active` (final): the shadow comparison. */
    shadow: ShadowStatsSchema.optional(),
    /** `active` after the offer's health watch passed, or `rolled_back` for `health_regression`. */
    health: HealthStatsSchema.optional(),
  })
  .refine((s) => (s.state === 'rejected' || s.state === 'rolled_back') === (s.reason !== undefined), {
    message: 'reason is required for rejected and rolled_back, and only for them',
    path: ['reason'],
  });
export type RolloutStatus = z.infer<typeof RolloutStatusSchema>;

/** Candidate state carried in heartbeats (the states a device can be in while it holds one). */
export type CandidateState = NonNullable<Heartbeat['candidate']>['state'];
