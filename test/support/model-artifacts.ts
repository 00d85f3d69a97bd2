import { createHash } from 'node:crypto';
import {
  encodeTrainingRows,
  headParamCount,
  packArtifact,
  type ArtifactArchive,
  type HeadSpec,
  type ModelManifest,
  type TrainingRows,
} from '@shelfsight/contracts';

/**
 * Tiny model artifacts written directly (no TensorFlow): a softmax head with chosen
 * weights, its manifest, and training rows — for registry tests and the probe that
 * proves the hub never loads TensorFlow.
 */
export interface TinyHeadInput {
  version: string;
  labels: string[];
  /** inputDim × labels row-major kernel, then one bias per label. */
  kernel: number[][];
  bias?: number[];
  backboneId?: string;
  parent?: string;
}

export function tinyArtifact(input: TinyHeadInput): ArtifactArchive {
  const inputDim = input.kernel.length;
  const k = input.labels.length;
  const spec: HeadSpec = { type: 'softmax', inputDim, numClasses: k, normalize: 'none' };
  const w = new Float32Array(headParamCount(spec));
  input.kernel.forEach((row, i) => row.forEach((v, j) => (w[i * k + j] = v)));
  (input.bias ?? []).forEach((v, j) => (w[inputDim * k + j] = v));
  const weights = Buffer.from(w.buffer);
  const backboneId = input.backboneId ?? 'tiny-backbone';
  const manifest: ModelManifest = {
    formatVersion: 1,
    version: input.version,
    createdAt: new Date().toISOString(),
    backbone: { id: backboneId, checksum: createHash('sha256').update(backboneId).digest('hex'), format: 'tfjs-layers', inputSize: [16, 16], inputRange: [0, 1], featureDim: inputDim, source: backboneId },
    input: { size: [16, 16], range: [0, 1], resize: 'cover-centre' },
    head: { ...spec, params: w.length, weightsFile: 'head.bin', weightsBytes: weights.length, weightsSha256: createHash('sha256').update(weights).digest('hex') },
    labels: { file: 'labels.txt', count: k },
    training: { data: 'generated', rows: { training: 0 } },
    metrics: {},
    ...(input.parent ? { lineage: { parent: input.parent } } : {}),
  };
  return { manifest: Buffer.from(JSON.stringify(manifest, null, 2)), weights, labels: Buffer.from(input.labels.join('\n') + '\n') };
}

export function tinyArchive(input: TinyHeadInput, rows?: TrainingRows): Promise<Buffer> {
  return packArtifact({ ...tinyArtifact(input), ...(rows ? { trainingRows: encodeTrainingRows(rows) } : {}) });
}

/** Rows from explicit (label, embedding, split) triples. */
export function rowsOf(labels: string[], items: Array<{ label: string; x: number[]; split?: 0 | 1 | 2; id?: string }>): TrainingRows {
  const dim = items[0]?.x.length ?? 1;
  return {
    dim,
    labels,
    label: Uint32Array.from(items.map((i) => labels.indexOf(i.label))),
    split: Uint8Array.from(items.map((i) => i.split ?? 0)),
    x: Float32Array.from(items.flatMap((i) => i.x)),
    ids: items.map((i, n) => i.id ?? `row:${n}`),
  };
}

/** The admin key registry tests start their hub with (HUB_API_KEY) and send on every request. */
export const REGISTRY_TEST_KEY = 'registry-tests-admin-key-5f2c9a';

/** fetch with the registry tests' key. */
export function keyedFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('X-API-Key', REGISTRY_TEST_KEY);
  return fetch(url, { ...init, headers });
}

export async function keyedJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await keyedFetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

export async function postArchive(hubUrl: string, body: Buffer, query = '', contentType = 'application/x-tar'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await keyedFetch(`${hubUrl}/models${query}`, { method: 'POST', headers: { 'Content-Type': contentType }, body: new Uint8Array(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * Give the hub evaluation rows for a backbone (POST /models/evaluation-rows, an admin's act):
 * the gate scores uploads on the hub's own rows only. `testingOnly` sends just split 2.
 */
export async function postEvaluationRows(hubUrl: string, backbone: string, rows: TrainingRows, opts: { testingOnly?: boolean; apiKey?: string } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  let sent = rows;
  if (opts.testingOnly) {
    const keep = [...rows.split.keys()].filter((i) => rows.split[i] === 2);
    sent = {
      dim: rows.dim,
      labels: rows.labels,
      label: Uint32Array.from(keep.map((i) => rows.label[i] as number)),
      split: Uint8Array.from(keep.map(() => 2)),
      x: Float32Array.from(keep.flatMap((i) => Array.from(rows.x.subarray(i * rows.dim, (i + 1) * rows.dim)))),
      ...(rows.ids ? { ids: keep.map((i) => rows.ids![i] as string) } : {}),
    };
  }
  const headers = new Headers({ 'Content-Type': 'application/octet-stream', 'X-API-Key': opts.apiKey ?? REGISTRY_TEST_KEY });
  const res = await fetch(`${hubUrl}/models/evaluation-rows?backbone=${encodeURIComponent(backbone)}`, { method: 'POST', headers, body: new Uint8Array(encodeTrainingRows(sent)) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
