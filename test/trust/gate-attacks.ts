import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import sharp from 'sharp';
import { silentLogger } from '@shelfsight/common';
import { FileBlobStore } from '@shelfsight/hub';
import { encodeTrainingRows, type TrainingJobView } from '@shelfsight/contracts';
import { rowsOf, tinyArchive, type TinyHeadInput } from '../support/model-artifacts';
import { insertLabelledSample } from '../support/samples';
import { eventually, hubFetch, type TestHub } from '../support/test-hub';
import { GROCERY_DIR, hasShared, REFERENCE_BACKBONE } from '../support/workspace-data';
import type { FleetAttackResult } from './fleet-attacks';

/**
 * The registry half of the trust harness: wrong labels on one category reach a real
 * training job on the hub's worker, and a head collapsing a category that has few
 * evaluation rows is uploaded. Neither may become releasable; every attack version that
 * did is counted in `released_regressions`.
 */

interface Model {
  version: string;
  releasable: boolean | null;
  gateReason: string;
  gate: { reference: string | null; regressed: string[]; unverified: string[]; overridable: boolean };
  rescore: { state: string | null };
}

const BACKBONE = 'nsfw-mobilenet-v2';
const DIM = 1280;
/** A 1280-d embedding "hot" on every third dimension from `hot`, as a device would send for one product. */
const embedding = (hot: number, i: number) => Array.from({ length: DIM }, (_, k) => (k % 3 === hot ? 1 : 0.05) + ((i * 31 + k) % 7) * 0.01);
/** A head reading the hot dimensions: label j answers embeddings hot on `hots[j]`. */
const hotHead = (version: string, labels: string[], hots: number[], extra: Partial<TinyHeadInput> = {}): TinyHeadInput => ({
  version,
  labels,
  kernel: Array.from({ length: DIM }, (_, k) => hots.map((h) => (k % 3 === h ? 0.02 : 0))),
  backboneId: BACKBONE,
  ...extra,
});

export async function gateAttacks(sut: TestHub, log: (m: string) => void, counters: { released_regressions: number }, report: (r: FleetAttackResult) => void): Promise<void> {
  const url = sut.hub.httpUrl;
  const tag = randomBytes(3).toString('hex');
  const model = async (version: string) => (await (await hubFetch(`${url}/models/${encodeURIComponent(version)}`)).json()) as Model;
  const upload = async (archive: Buffer) => {
    const res = await hubFetch(`${url}/models`, { method: 'POST', headers: { 'Content-Type': 'application/x-tar' }, body: new Uint8Array(archive) });
    if (res.status !== 201) throw new Error(`POST /models: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as Model;
  };
  const db = new Client(sut.db.url);
  await db.connect();
  /** Operator-labelled samples as agents send them and operators label them (a share is held out for evaluation by hash). */
  const labelSamples = async (label: string, hot: number, n: number, device: string) => {
    for (let i = 0; i < n; i++) await insertLabelledSample(db, { device, sampleId: `${label}-${hot}-${i}-${randomBytes(3).toString('hex')}`, label, backbone: BACKBONE, embedding: embedding(hot, i) });
  };
  try {
    // --- Wrong labels on one category, through a real training job.
    {
      const name = 'wrong labels on one category (milk photos labelled apples) through a training job';
      log(`gate: ${name}`);
      // Enough that the default hold-out (EVAL_HOLDOUT_PERCENT, 20%) gives each category more than GATE_MIN_EVAL_ROWS.
      await labelSamples('apples', 0, 120, `trust-dev-${tag}`);
      await labelSamples('milk', 1, 120, `trust-dev-${tag}`);
      const v0 = `trust-v0-${tag}`;
      const own = rowsOf(['apples', 'milk'], [...Array.from({ length: 20 }, (_, i) => ({ label: 'apples', x: embedding(0, i) })), ...Array.from({ length: 20 }, (_, i) => ({ label: 'milk', x: embedding(1, i) }))]);
      const first = await upload(await tinyArchive(hotHead(v0, ['apples', 'milk'], [0, 1]), own));
      // More milk photos labelled apples than true milk ones: enough to damage milk (held out in the same share, they
      // also sit in the evaluation rows, where they pull the overall score up: the per-category test must see milk fall).
      await labelSamples('apples', 1, 400, `trust-mislabeller-${tag}`);
      const created = await hubFetch(`${url}/training-jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ base: { version: v0 }, backbone: BACKBONE, augmentFromThumbnails: false, head: { type: 'softmax', epochs: 10 } }),
      });
      const { id } = (await created.json()) as TrainingJobView;
      const job = await eventually(async () => {
        const j = (await (await hubFetch(`${url}/training-jobs/${id}`)).json()) as TrainingJobView;
        return j.status === 'done' || j.status === 'failed' ? j : undefined;
      }, 150_000, `training job ${id}`);
      const version = (job.result as { version?: string } | null)?.version;
      const m = version ? await model(version) : undefined;
      if (m?.releasable) counters.released_regressions += 1;
      report({
        name,
        refused: first.releasable === true && job.status === 'done' && m?.releasable === false && m.gate.regressed.includes('milk'),
        outcome: `base ${v0} releasable=${first.releasable}; job ${id} ${job.status}${job.error ? ` (${job.error})` : ''}; ${version ?? 'no version'} releasable=${m?.releasable}: ${m?.gateReason.slice(0, 160) ?? ''}`,
      });
    }

    // --- A collapse of a category with few evaluation rows.
    {
      const name = 'collapse of a category with few evaluation rows (cream: 3 rows)';
      log(`gate: ${name}`);
      const backbone = `trust-tiny-${tag}`;
      const LABELS = ['apples', 'cream', 'juice'];
      const rows = rowsOf(LABELS, [
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'apples', x: [1, 0, 0, 0], id: `image:apples-${i}.jpg` })),
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'juice', x: [0, 0, 1, 0], id: `image:juice-${i}.jpg` })),
        ...Array.from({ length: 3 }, (_, i) => ({ label: 'cream', x: [0, 1, 0, 0], id: `image:cream-${i}.jpg` })),
      ]);
      const evalRes = await hubFetch(`${url}/models/evaluation-rows?backbone=${backbone}`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(encodeTrainingRows(rows)) });
      if (evalRes.status !== 201) throw new Error(`POST /models/evaluation-rows: HTTP ${evalRes.status}`);
      const good = `trust-good-${tag}`;
      await upload(await tinyArchive({ version: good, labels: LABELS, backboneId: backbone, kernel: [[5, 0, 0], [0, 5, 0], [0, 0, 5], [0, 0, 0]] }));
      // An operator releases the good head knowingly (cream is thin): the collapse is judged against it.
      await hubFetch(`${url}/models/${good}/override`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'trust harness: cream has 3 evaluation rows, checked by hand' }) });
      const collapse = await upload(await tinyArchive({ version: `trust-cream-collapse-${tag}`, labels: LABELS, backboneId: backbone, parent: good, kernel: [[5, 0, 0], [0, 0, 5], [0, 0, 5], [0, 0, 0]] }));
      if (collapse.releasable) counters.released_regressions += 1;
      report({
        name,
        refused: collapse.releasable === false && collapse.gate.unverified.includes('cream') && collapse.rescore.state === null,
        outcome: `releasable=${collapse.releasable}, unverified ${collapse.gate.unverified.join(',') || 'none'}, backlog re-score ${collapse.rescore.state ?? 'not run'}: ${collapse.gateReason.slice(0, 160)}`,
      });
    }

    // --- Poisoned embeddings from one device: real grocery photos, the reference backbone.
    {
      const name = 'poisoned embeddings from one device (embeddings of another product\u2019s photos)';
      if (!hasShared()) {
        report({ name, refused: false, outcome: `workspace data missing (${GROCERY_DIR}, ${REFERENCE_BACKBONE}): not run` });
      } else {
        log(`gate: ${name}`);
        report(await poisonedEmbeddings(sut, db, tag, counters));
      }
    }
  } finally {
    await db.end();
  }
}

/** Grocery photos of a coarse category (`train/Fruit/Apple/...` → Apple), from train.txt. */
function photos(category: string): string[] {
  return readFileSync(join(GROCERY_DIR, 'train.txt'), 'utf8')
    .split('\n')
    .map((l) => l.split(',')[0]?.trim() ?? '')
    .filter((p) => p.split('/')[2] === category)
    .map((p) => join(GROCERY_DIR, p));
}

/**
 * One device sends, for half its frames, the embedding of another product's photo beside the
 * true thumbnail (as an agent sends samples: centre-view embedding, 224-px JPEG); an honest
 * device sends the truth. A retraining job must leave the poisoned samples out (none in the
 * version's lineage) and name the device.
 */
async function poisonedEmbeddings(sut: TestHub, db: Client, tag: string, counters: { released_regressions: number }): Promise<FleetAttackResult> {
  const name = 'poisoned embeddings from one device (embeddings of another product\u2019s photos)';
  const vision = await import('@shelfsight/vision');
  const honest = `trust-honest-${tag}`;
  const poisoner = `trust-poisoner-${tag}`;
  const categories = ['Apple', 'Milk'] as const;
  const frames = { Apple: photos('Apple').slice(20, 32), Milk: photos('Milk').slice(20, 32) };
  // The base: a small dataset of the same categories, inside the hub's dataset root.
  const base = join(sut.dataDir, 'datasets', `grocery-${tag}.csv`);
  writeFileSync(base, ['image,label', ...categories.flatMap((c) => photos(c).slice(0, 8).map((p) => `${p},${c}`))].join('\n') + '\n');
  const ctx = await vision.openExtraction({ backbone: REFERENCE_BACKBONE, cacheDir: false, logger: silentLogger, workers: 1 });
  const all = [...frames.Apple, ...frames.Milk];
  const features = await vision.computeBottlenecks(all.map((path) => ({ path, views: [vision.CENTER_VIEW] })), ctx.extractor, undefined, {}).finally(() => ctx.close());
  const embeddingOf = (p: string) => features.features.get(p)!.get(vision.CENTER_VIEW.key)!;
  const blobs = new FileBlobStore(join(sut.dataDir, 'blobs'));
  const backboneId = JSON.parse(readFileSync(join(REFERENCE_BACKBONE, 'backbone.json'), 'utf8')).name as string;
  const poisoned = new Set<string>();
  for (const label of categories) {
    for (const [i, photo] of frames[label].entries()) {
      const device = i % 2 === 0 ? honest : poisoner;
      const isPoisoned = device === poisoner;
      const sent = isPoisoned ? embeddingOf(frames[label === 'Apple' ? 'Milk' : 'Apple'][i]!) : embeddingOf(photo);
      const thumb = await sharp(photo).rotate().resize({ width: 224, height: 224, fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 75 }).toBuffer();
      const sha = (await blobs.put(thumb)).sha256;
      const id = await insertLabelledSample(db, { device, sampleId: `p-${label}-${i}-${tag}`, label, backbone: backboneId, embedding: sent, thumbnail: { sha256: sha, bytes: thumb.length, width: 224, height: 168 } });
      if (isPoisoned) poisoned.add(id);
    }
  }
  const created = await hubFetch(`${sut.hub.httpUrl}/training-jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ base: { dataset: base }, backbone: REFERENCE_BACKBONE, head: { type: 'softmax', epochs: 5 } }),
  });
  if (created.status !== 201) return { name, refused: false, outcome: `job not created: HTTP ${created.status} ${await created.text()}` };
  const { id } = (await created.json()) as TrainingJobView;
  const job = await eventually(async () => {
    const j = (await (await hubFetch(`${sut.hub.httpUrl}/training-jobs/${id}`)).json()) as TrainingJobView;
    return j.status === 'queued' || j.status === 'running' ? undefined : j;
  }, 180_000, `job ${id}`);
  const result = job.result as { version?: string; embeddingCheck?: { messages: string[]; devices: Array<{ device: string; checked: number; mismatched: number }> } } | null;
  const version = result?.version;
  const lineage = version ? ((await (await hubFetch(`${sut.hub.httpUrl}/models/${encodeURIComponent(version)}`)).json()) as { releasable: boolean | null; lineage: { sampleIds: string[] } }) : undefined;
  const trainedOnPoison = (lineage?.lineage.sampleIds ?? []).filter((s) => poisoned.has(s.replace(/^sample:/, ''))).length;
  const byDevice = Object.fromEntries((result?.embeddingCheck?.devices ?? []).map((x) => [x.device, x]));
  const named = (result?.embeddingCheck?.messages ?? []).some((m) => m.includes(poisoner));
  void counters;
  return {
    name,
    refused: job.status === 'done' && lineage !== undefined && trainedOnPoison === 0 && named && (byDevice[honest]?.mismatched ?? 1) === 0,
    outcome: `job ${id} ${job.status}${job.error ? ` (${job.error})` : ''}: ${(result?.embeddingCheck?.messages ?? []).join('; ') || 'no device named'}; honest device ${byDevice[honest]?.mismatched ?? '?'} mismatched of ${byDevice[honest]?.checked ?? '?'}; poisoned samples trained on: ${trainedOnPoison} of ${poisoned.size}`,
  };
}
