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
 * Everything a device checks about an offered manifest before it downloads a byte: the
 * signature by a trusted key, the expiry, its backbone, and a release counter above the one it
 * trusts for that (backbone, label list). The artifact is checked against the manifest
 * while it downloads (`artifact-download.ts`).
 */
export function checkManifest(signed: unknown, ctx: { keys: TrustedKeys; trust: TrustStore; backbone: DeviceBackbone; now: Date }): OfferCheck {
  const v = verifySignedManifest(signed, ctx.keys, ctx.now);
  if (!v.ok) return v;
  const m = v.manifest;
  if (m.backbone.id !== ctx.backbone.id || m.backbone.checksum !== ctx.backbone.checksum) {
    return {
      ok: false,
      reason: 'foreign_backbone',
      message: `${m.modelVersion} is for backbone ${m.backbone.id} (${m.backbone.checksum.slice(0, 12)}…), this device runs ${ctx.backbone.id} (${ctx.backbone.checksum?.slice(0, 12) ?? 'checksum unknown'}…)`,
    };
  }
  const trusted = ctx.trust.trusted(m);
  if (m.releaseCounter <= trusted) {
    return { ok: false, reason: 'replayed_counter', message: `${m.modelVersion} has release counter ${m.releaseCounter}, not above the trusted ${trusted}` };
  }
  return { ok: true, manifest: m };
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
