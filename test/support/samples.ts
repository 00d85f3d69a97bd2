import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import sharp from 'sharp';
import { encodeBottleneck, SCHEMA_VERSION, type Sample, type ScoredCategory } from '@shelfsight/contracts';

/** A small real JPEG, different per seed (solid colour + noise), like an agent's thumbnail. */
export async function jpegThumbnail(seed: number, width = 64, height = 48): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  let s = (seed * 7919 + 13) % 233280;
  for (let i = 0; i < px.length; i++) {
    s = (s * 9301 + 49297) % 233280;
    px[i] = (((seed * 53) >> (i % 3)) + Math.floor((s / 233280) * 60)) & 0xff;
  }
  return sharp(px, { raw: { width, height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
}

export interface SampleOptions {
  site: string;
  location?: string;
  frameId?: string;
  reason?: Sample['reason'];
  category?: string;
  topK?: ScoredCategory[];
  backboneId?: string;
  embedding?: Float32Array;
  thumbnail?: Buffer;
  requestId?: string;
  capturedAt?: string;
}

let counter = 0;

/** A valid sample message from `deviceId`. */
export async function sampleMessage(deviceId: string, o: SampleOptions): Promise<Sample> {
  counter += 1;
  const frameId = o.frameId ?? `f-${counter}-${randomBytes(3).toString('hex')}`;
  const reason = o.reason ?? 'low_confidence';
  const topK = o.topK ?? [
    { category: o.category ?? 'milk', confidence: 0.4 },
    { category: 'juice', confidence: 0.3 },
  ];
  const thumbnail = o.thumbnail ?? (await jpegThumbnail(counter));
  return {
    v: SCHEMA_VERSION,
    deviceId,
    sampleId: `${frameId}:${reason}`,
    reason,
    ...(o.requestId ? { requestId: o.requestId } : {}),
    frameId,
    site: o.site,
    location: o.location ?? 'A-01-1-A',
    capturedAt: o.capturedAt ?? new Date(Date.now() - 60_000).toISOString(),
    prediction: { category: topK[0]!.category, confidence: topK[0]!.confidence, topK, modelVersion: 'test-model' },
    backboneId: o.backboneId ?? 'test-backbone',
    thumbnail: { mime: 'image/jpeg', width: 64, height: 48, data: thumbnail.toString('base64') },
    ...(o.embedding ? { bottleneck: encodeBottleneck(o.embedding) } : {}),
    sentAt: new Date().toISOString(),
  };
}

/** A deterministic pseudo-random vector. */
export function randomVector(dim: number, seed: number): Float32Array {
  const v = new Float32Array(dim);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < dim; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 32 - 0.5;
  }
  return v;
}

/** `base` plus a little noise: a near-duplicate frame. */
export function nearby(base: Float32Array, seed: number, noise = 0.02): Float32Array {
  const n = randomVector(base.length, seed);
  return base.map((x, i) => x + n[i]! * noise);
}

/** Register a model row for a backbone, so the hub accepts samples for it (the registry's own API is another feature). */
export async function registerTestBackbone(databaseUrl: string, backboneId: string, featureDim?: number): Promise<void> {
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  try {
    const manifest = featureDim ? { backbone: { id: backboneId, featureDim } } : {};
    await sql.query(
      `INSERT INTO model_versions (version, backbone_id, backbone_checksum, labels, category_set, head_type, manifest, artifact_sha256, artifact_bytes, source, created_at)
       VALUES ($1, $2, $3, '["milk","juice"]', 'test', 'softmax', $4, $3, 1, 'demo', now()) ON CONFLICT DO NOTHING`,
      [`test-${backboneId}`, backboneId, '0'.repeat(64), JSON.stringify(manifest)],
    );
  } finally {
    await sql.end();
  }
}

/** A sample as an agent sent it and an operator labelled it, written straight into the hub's table (for registry and job tests). */
export interface LabelledSampleRow {
  device: string;
  sampleId: string;
  label: string;
  backbone: string;
  embedding: Float32Array | number[];
  /** The thumbnail blob (default: none stored, `a` × 64). */
  thumbnail?: { sha256: string; bytes: number; width: number; height: number };
}

/** Insert a labelled sample; returns its id. */
export async function insertLabelledSample(db: Client, s: LabelledSampleRow): Promise<string> {
  const v = Float32Array.from(s.embedding);
  const t = s.thumbnail ?? { sha256: 'a'.repeat(64), bytes: 1, width: 1, height: 1 };
  const r = await db.query<{ id: string }>(
    `INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
      predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
      scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, state, label, labelled_by, labelled_at)
     VALUES ($1, $2, 'low_confidence', $2, 's', 'A', 'A-01-1-A', now(), $3, 0.4, '[]', 'v0', $4, $5, $6, $7, $8, $9, $10,
      $3, 0.4, 0.1, 1, '[]', 'v0', 'labelled', $3, 'key:test', now()) RETURNING id::text`,
    [s.device, s.sampleId, s.label, s.backbone, Buffer.from(v.buffer, v.byteOffset, v.byteLength), v.length, t.sha256, t.bytes, t.width, t.height],
  );
  return r.rows[0]!.id;
}
