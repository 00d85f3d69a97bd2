import { createHash } from 'node:crypto';
import { STAND_IN_BACKBONE_CHECKSUM, STAND_IN_CATEGORIES, standInHeadArtifact } from '@shelfsight/agent';
import { labelsHash } from '@shelfsight/contracts';
import { BLOB_STORE, PrismaService, type BlobStore } from '@shelfsight/hub';
import type { TestHub } from './test-hub';

/**
 * A head whose shadow run would flip one category, for the rollout gate's tests: where the
 * devices' stand-in head says milk, it says yogurt; every other category agrees. And a shelf
 * whose frames the stand-in head calls milk one time in four.
 */
export const MILK_TO_YOGURT = STAND_IN_CATEGORIES.map((c) => (c === 'milk' ? 'yogurt' : c));

/**
 * Put a releasable stand-in head with these output categories into the hub's registry
 * (artifact in the blob store, gate passed: the registry's gate is not what these tests try).
 */
export async function seedStandInVersion(sut: TestHub, version: string, labels: string[] = STAND_IN_CATEGORIES, opts: { releasable?: boolean; gateReason?: string } = {}): Promise<Buffer> {
  const artifact = standInHeadArtifact(version, labels);
  const blob = await sut.hub.app.get<symbol, BlobStore>(BLOB_STORE).put(artifact);
  await sut.hub.app.get(PrismaService).$executeRaw`
    INSERT INTO model_versions (version, backbone_id, backbone_checksum, labels, category_set, head_type, manifest, artifact_sha256, artifact_bytes,
      releasable, gate_reason, source, created_at)
    VALUES (${version}, 'stand-in', ${STAND_IN_BACKBONE_CHECKSUM}, ${JSON.stringify(labels)}::jsonb, ${labelsHash([...labels].sort())}, 'stand-in',
      '{}'::jsonb, ${blob.sha256}, ${blob.bytes}, ${opts.releasable ?? true}, ${opts.gateReason ?? null}, 'upload', now())`;
  return artifact;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const found = { milk: [] as Buffer[], other: [] as Buffer[] };
let scanned = 0;

/** The `k`-th distinct frame the stand-in head calls milk (its category comes from the image's sha256), or anything else. */
export function shelfFrame(kind: 'milk' | 'other', k: number): Buffer {
  const list = found[kind];
  while (list.length <= k) {
    const image = Buffer.concat([PNG_SIGNATURE, Buffer.from(`shelf-frame-${++scanned}`)]);
    const category = STAND_IN_CATEGORIES[createHash('sha256').update(image).digest()[0]! % STAND_IN_CATEGORIES.length];
    found[category === 'milk' ? 'milk' : 'other'].push(image);
  }
  return list[k]!;
}

/** Frame `k` of a shelf where every fourth frame is milk. */
export function quarterMilkFrame(k: number): Buffer {
  return k % 4 === 0 ? shelfFrame('milk', k) : shelfFrame('other', k);
}
