import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@shelfsight/common';
import { embeddingFromBytesLE } from '@shelfsight/contracts';

/** How the worker checks devices' embeddings against the thumbnails operators labelled (EMBEDDING_CHECK_*). */
export interface EmbeddingCheckSettings {
  /** Share (0..100) of a device's labelled samples re-embedded from their thumbnails. */
  percent: number;
  /** A device with at most this many labelled samples in the job has all of them checked. */
  allBelow: number;
  /** A sample whose stored embedding is further than this (cosine distance) from its thumbnail's is left out. */
  maxCosineDistance: number;
}

export interface CheckedSample {
  id: bigint;
  device_id: string;
  embedding: Uint8Array;
}

export interface DeviceEmbeddingReport {
  device: string;
  samples: number;
  checked: number;
  /** Left out: stored embedding and thumbnail disagree. */
  mismatched: number;
  /** No thumbnail (or an undecodable one): could not be checked, kept. */
  unverifiable: number;
  /** Largest cosine distance seen among its checked samples. */
  maxDistance: number;
  /** What the operator reads, when something was left out: "device X sent 37 embeddings that do not match their frames". */
  message?: string;
}

export interface EmbeddingCheckResult {
  /** Sample ids (as strings) to leave out, with the cosine distance found. */
  mismatched: Map<string, number>;
  devices: DeviceEmbeddingReport[];
  checked: number;
  seconds: number;
}

/** 1 − cosine similarity; 1 when either vector is all zeros. */
export function cosineDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`vectors of ${a.length} and ${b.length} dimensions`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 || nb === 0) return 1;
  return 1 - dot / Math.sqrt(na * nb);
}

/**
 * Which samples to check first, per device: all of a device's samples when it has at most
 * `allBelow`, else a `percent` share drawn with `salt` — a fresh random salt per job, so a
 * device cannot know which of its samples will be checked. A device with a mismatch among
 * them is then checked in full ({@link checkSampleEmbeddings}).
 */
export function firstChecks(samples: Array<Pick<CheckedSample, 'id' | 'device_id'>>, settings: Pick<EmbeddingCheckSettings, 'percent' | 'allBelow'>, salt: string): Set<string> {
  const perDevice = new Map<string, number>();
  for (const s of samples) perDevice.set(s.device_id, (perDevice.get(s.device_id) ?? 0) + 1);
  const out = new Set<string>();
  for (const s of samples) {
    if ((perDevice.get(s.device_id) as number) <= settings.allBelow) out.add(s.id.toString());
    else if ((createHash('sha256').update(`${salt}:${s.id}`).digest().readUInt32BE(0) / 0x1_0000_0000) * 100 < settings.percent) out.add(s.id.toString());
  }
  return out;
}

/** "device X sent 37 embeddings that do not match their frames" */
export function mismatchMessage(device: string, n: number): string {
  return `device ${device} sent ${n} ${n === 1 ? 'embedding that does' : 'embeddings that do'} not match ${n === 1 ? 'its frame' : 'their frames'}`;
}

/** Embeds images (files) with the job's backbone, unchanged (the centre view an agent classifies). */
export type ThumbnailEmbedder = (paths: string[], onProgress: (done: number) => void) => Promise<Map<string, Float32Array>>;

/**
 * Re-embed a share of each device's labelled samples from the thumbnails operators looked
 * at, with the job's backbone, and compare with the embeddings the devices sent: a sample
 * further than `maxCosineDistance` is left out of training and counted against its device;
 * a device with any mismatch has all its samples checked. A frame and its own 224-px
 * thumbnail are 0.005–0.042 apart on the reference backbone, another photo of the same
 * product 0.15–0.27, another product 0.47–0.77 (BENCHMARKS.md).
 */
export async function checkSampleEmbeddings(opts: {
  samples: CheckedSample[];
  dim: number;
  settings: EmbeddingCheckSettings;
  thumbnails: (ids: bigint[]) => Promise<Map<string, Buffer>>;
  embed: ThumbnailEmbedder;
  workDir?: string;
  logger: Logger;
  onProgress?: (done: number, total: number) => void;
  salt?: string;
}): Promise<EmbeddingCheckResult> {
  const started = Date.now();
  const { samples, settings } = opts;
  const salt = opts.salt ?? randomBytes(16).toString('hex');
  const byId = new Map(samples.map((s) => [s.id.toString(), s]));
  const reports = new Map<string, DeviceEmbeddingReport>();
  for (const s of samples) {
    const r = reports.get(s.device_id) ?? { device: s.device_id, samples: 0, checked: 0, mismatched: 0, unverifiable: 0, maxDistance: 0 };
    r.samples++;
    reports.set(s.device_id, r);
  }
  const mismatched = new Map<string, number>();
  const done = new Set<string>();
  const dir = await mkdtemp(join(opts.workDir ?? tmpdir(), 'embedding-check-'));
  let total = 0;
  const pass = async (ids: string[]) => {
    total += ids.length;
    const thumbs = await opts.thumbnails(ids.map((id) => BigInt(id)));
    const paths = new Map<string, string>();
    for (const id of ids) {
      done.add(id);
      const bytes = thumbs.get(id);
      const r = reports.get((byId.get(id) as CheckedSample).device_id) as DeviceEmbeddingReport;
      if (!bytes) {
        r.unverifiable++;
        continue;
      }
      const path = join(dir, `${id}.img`);
      await writeFile(path, bytes);
      paths.set(path, id);
    }
    const base = done.size - ids.length;
    const features = await opts.embed([...paths.keys()], (n) => opts.onProgress?.(base + n, total));
    for (const [path, id] of paths) {
      const s = byId.get(id) as CheckedSample;
      const r = reports.get(s.device_id) as DeviceEmbeddingReport;
      const f = features.get(path);
      if (!f) {
        r.unverifiable++;
        continue;
      }
      r.checked++;
      const d = cosineDistance(embeddingFromBytesLE(s.embedding, opts.dim), f);
      r.maxDistance = Math.max(r.maxDistance, d);
      if (d > settings.maxCosineDistance) {
        r.mismatched++;
        mismatched.set(id, d);
      }
    }
    opts.onProgress?.(done.size, total);
  };
  try {
    await pass([...firstChecks(samples, settings, salt)]);
    // A device caught once is checked in full.
    const suspects = new Set([...reports.values()].filter((r) => r.mismatched > 0).map((r) => r.device));
    const rest = samples.filter((s) => suspects.has(s.device_id) && !done.has(s.id.toString())).map((s) => s.id.toString());
    if (rest.length > 0) await pass(rest);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const devices = [...reports.values()].map((r) => ({ ...r, maxDistance: +r.maxDistance.toFixed(4), ...(r.mismatched > 0 ? { message: mismatchMessage(r.device, r.mismatched) } : {}) }));
  for (const r of devices) if (r.message) opts.logger.warn(r.message, { device: r.device, checked: r.checked, mismatched: r.mismatched });
  return { mismatched, devices, checked: devices.reduce((n, r) => n + r.checked, 0), seconds: (Date.now() - started) / 1000 };
}
