import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import sharp from 'sharp';
import { silentLogger } from '@shelfsight/common';
import type { TrainingJobView } from '@shelfsight/contracts';
import { FileBlobStore } from '@shelfsight/hub';
import { CENTER_VIEW, computeBottlenecks, openExtraction } from '@shelfsight/vision';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from './support/test-hub';
import { groceryTrainPhotos as photos } from './support/grocery';
import { REFERENCE_BACKBONE, requireShared } from './support/workspace-data';

const BACKBONE_ID = 'mobilenet_v1_050_224';
const enabled = requireShared('training-job embedding check tests');
const d = enabled ? describe : describe.skip;

/**
 * Poisoned embeddings (issue 17, part 4) with real grocery photos and the reference
 * backbone: one device sends, for some frames, the embedding of another product's photo.
 * The training worker re-embeds the labelled samples' thumbnails (all of them: a small job),
 * leaves out those that disagree, and names the device in the job's result.
 */
d('training jobs: embeddings checked against their thumbnails (real grocery photos)', () => {
  let sut: TestHub;
  const tag = randomBytes(3).toString('hex');
  const honest = `honest-${tag}`;
  const poisoner = `poisoner-${tag}`;
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-embcheck-'));
  const poisonedIds: string[] = [];

  beforeAll(async () => {
    const categories = ['Apple', 'Milk'];
    writeFileSync(join(work, 'base.csv'), ['image,label', ...categories.flatMap((c) => photos(c).slice(0, 8).map((p) => `${p},${c}`))].join('\n') + '\n');
    // Half the labelled samples are held out for the registry's evaluation: those are checked too.
    sut = await startTestHub('pglite', 'aedes', { TRAINING_WORKER: 'child', TRAINING_BACKBONE: REFERENCE_BACKBONE, EVAL_HOLDOUT_PERCENT: '50', EMBEDDING_MAX_COSINE_DISTANCE: '0.1', GATE_MIN_EVAL_ROWS: '1' });
    // As an agent sends them: the frame's embedding (the backbone's centre view) and a 224-px JPEG thumbnail.
    const frames = { Apple: photos('Apple').slice(20, 26), Milk: photos('Milk').slice(20, 26) };
    const all = [...frames.Apple, ...frames.Milk];
    const ctx = await openExtraction({ backbone: REFERENCE_BACKBONE, cacheDir: false, logger: silentLogger, workers: 1 });
    const features = await computeBottlenecks(all.map((path) => ({ path, views: [CENTER_VIEW] })), ctx.extractor, undefined, {}).finally(() => ctx.close());
    const embeddingOf = (p: string) => features.features.get(p)!.get(CENTER_VIEW.key)!;
    const blobs = new FileBlobStore(join(sut.dataDir, 'blobs'));
    const c = new Client(sut.db.url);
    await c.connect();
    try {
      for (const label of categories as Array<'Apple' | 'Milk'>) {
        for (const [i, photo] of frames[label].entries()) {
          const device = i % 2 === 0 ? honest : poisoner;
          // The poisoner's Apple frames carry the embedding of a Milk photo (and the reverse) for its first two of each.
          const poisoned = device === poisoner && i < 4;
          const sent = poisoned ? embeddingOf(frames[label === 'Apple' ? 'Milk' : 'Apple'][i]!) : embeddingOf(photo);
          const thumb = await sharp(photo).rotate().resize({ width: 224, height: 224, fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 75 }).toBuffer();
          const sha = (await blobs.put(thumb)).sha256;
          const r = await c.query(
            `INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
              predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
              scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, state, label, labelled_by, labelled_at)
             VALUES ($1, $2, 'low_confidence', $2, 's', 'A', 'A-01-1-A', now(), $3, 0.4, '[]', 'v0', $4, $5, $6, $7, $8, 224, 168,
              $3, 0.4, 0.1, 1, '[]', 'v0', 'labelled', $3, 'key:test', now()) RETURNING id`,
            [device, `s-${label}-${i}-${tag}`, label, BACKBONE_ID, Buffer.from(sent.buffer, sent.byteOffset, sent.byteLength), sent.length, sha, thumb.length],
          );
          if (poisoned) poisonedIds.push(String(r.rows[0].id));
        }
      }
    } finally {
      await c.end();
    }
  }, 240_000);

  afterAll(async () => {
    await sut?.stop();
  });

  interface Result {
    sampleRows: number;
    heldOutForEvaluation: number;
    embeddingCheck: { checked: number; leftOut: number; mismatchedBefore: number; messages: string[]; devices: Array<{ device: string; checked: number; mismatched: number; maxDistance: number }> };
    version: string;
  }
  const runJob = async (): Promise<TrainingJobView> => {
    const res = await hubFetch(`${sut.hub.httpUrl}/training-jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ base: { dataset: join(work, 'base.csv') }, head: { type: 'softmax', epochs: 5 } }) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as TrainingJobView;
    return eventually(async () => {
      const j = (await getJson<TrainingJobView>(`${sut.hub.httpUrl}/training-jobs/${id}`)).body;
      return j.status === 'queued' || j.status === 'running' ? undefined : j;
    }, 240_000, `job ${id}`);
  };
  const flaggedInDb = async () => {
    const c = new Client(sut.db.url);
    await c.connect();
    try {
      return (await c.query(`SELECT id::text AS id FROM samples WHERE embedding_mismatch IS NOT NULL ORDER BY samples.id`)).rows.map((r: { id: string }) => r.id);
    } finally {
      await c.end();
    }
  };

  it('leaves out the samples whose embeddings do not match their thumbnails — trained or held out for evaluation — and reports them per device', async () => {
    const job = await runJob();
    expect(job).toMatchObject({ status: 'done', error: null });
    const result = job.result as unknown as Result;
    expect(poisonedIds).toHaveLength(4);
    expect(result.embeddingCheck.messages).toEqual([`device ${poisoner} sent 4 embeddings that do not match their frames`]);
    expect(result.embeddingCheck).toMatchObject({ checked: 12, leftOut: 4 });
    const byDevice = Object.fromEntries(result.embeddingCheck.devices.map((x) => [x.device, x]));
    expect(byDevice[honest]).toMatchObject({ checked: 6, mismatched: 0 });
    expect(byDevice[honest]!.maxDistance).toBeLessThan(0.1);
    expect(byDevice[poisoner]).toMatchObject({ checked: 6, mismatched: 4 });
    // The 8 honest samples are split between training and the registry's evaluation; the 4 poisoned are in neither.
    expect(result.sampleRows + result.heldOutForEvaluation).toBe(8);
    expect(job.progress).toMatchObject({ embeddingCheckDone: 12, embeddingCheckTotal: 12 });
    expect(await flaggedInDb()).toEqual([...poisonedIds].sort((a, b) => Number(a) - Number(b)));
    // The version's lineage names the samples trained on (none poisoned); its evaluation used the honest held-out ones only.
    const model = (await getJson<{ lineage: { sampleIds: string[] }; metrics: { heldOutSamples: number } }>(`${sut.hub.httpUrl}/models/${encodeURIComponent(result.version)}`)).body;
    expect(model.lineage.sampleIds).toHaveLength(result.sampleRows);
    expect(model.lineage.sampleIds.filter((s) => poisonedIds.includes(s))).toEqual([]);
    expect(model.metrics.heldOutSamples).toBe(result.heldOutForEvaluation);
  }, 300_000);

  it('never uses a sample found poisoned again: the next job skips it without re-checking', async () => {
    const job = await runJob();
    expect(job).toMatchObject({ status: 'done', error: null });
    const result = job.result as unknown as Result;
    expect(result.embeddingCheck).toMatchObject({ checked: 8, leftOut: 0, mismatchedBefore: 4, messages: [] });
    expect(result.sampleRows + result.heldOutForEvaluation).toBe(8);
  }, 300_000);
});
