import { verifySignedManifest, type ModelRejectReason, type RolloutManifest, type TrustedKeys } from '@shelfsight/contracts';
import type { TrustStore } from './trust-store';

/** The backbone a device runs: a head is only for the backbone it was trained on. */
export interface DeviceBackbone {
  id: string;
  /** Unknown (a classifier that does not say): every offer is refused as foreign. */
  checksum: string | undefined;
}

export type OfferCheck = { ok: true; manifest: RolloutManifest } | { ok: false; reason: ModelRejectReason; message: string };

/**
 * Whether an offer is what the hub signed: its manifest signed by a current release key (the
 * root-signed list's), not expired, and for this very offer (`offerId` inside the signed bytes,
 * so a forgery cannot borrow a real rollout's id). Checked before anything is reported.
 */
export function checkAuthentic(signed: unknown, offerId: string, keys: TrustedKeys, now: Date): OfferCheck {
  const v = verifySignedManifest(signed, keys, now);
  if (!v.ok) return v;
  if (v.manifest.offerId !== offerId) {
    return { ok: false, reason: 'offer_mismatch', message: `offer ${offerId} carries the manifest of offer ${v.manifest.offerId}` };
  }
  return { ok: true, manifest: v.manifest };
}

/**
 * Whether this device may run an authentic manifest's head: its backbone, and a release
 * counter above the newest this device activated on that model line (whatever the label
 * list). The artifact is checked against the manifest while it downloads (`artifact-download.ts`).
 */
export function checkForDevice(m: RolloutManifest, ctx: { trust: Pick<TrustStore, 'trusted'>; backbone: DeviceBackbone }): OfferCheck {
  if (m.backbone.id !== ctx.backbone.id || m.backbone.checksum !== ctx.backbone.checksum) {
    return {
      ok: false,
      reason: 'foreign_backbone',
      message: `${m.modelVersion} is for backbone ${m.backbone.id} (${m.backbone.checksum.slice(0, 12)}…), this device runs ${ctx.backbone.id} (${ctx.backbone.checksum?.slice(0, 12) ?? 'checksum unknown'}…)`,
    };
  }
  const trusted = ctx.trust.trusted(m);
  if (m.releaseCounter <= trusted) {
    return { ok: false, reason: 'replayed_counter', message: `${m.modelVersion} has release counter ${m.releaseCounter} on line ${m.modelLine}, not above the ${trusted} this device activated` };
  }
  return { ok: true, manifest: m };
}

/** Both checks: {@link checkAuthentic}, then {@link checkForDevice}. */
export function checkManifest(signed: unknown, offerId: string, ctx: { keys: TrustedKeys; trust: Pick<TrustStore, 'trusted'>; backbone: DeviceBackbone; now: Date }): OfferCheck {
  const a = checkAuthentic(signed, offerId, ctx.keys, ctx.now);
  return a.ok ? checkForDevice(a.manifest, ctx) : a;
}

/**
 * The backbone a classifier runs on: its id, and its checksum where the classifier exposes
 * one (`backboneChecksum`, or the TensorFlow.js classifier's `backbone.checksum`).
 */
export function deviceBackboneOf(head: { backboneId: string }): DeviceBackbone {
  const h = head as { backboneChecksum?: unknown; backbone?: { checksum?: unknown } };
  const checksum = typeof h.backboneChecksum === 'string' ? h.backboneChecksum : typeof h.backbone?.checksum === 'string' ? h.backbone.checksum : undefined;
  return { id: head.backboneId, checksum };
}
