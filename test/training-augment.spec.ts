import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import sharp from 'sharp';
import type { TrainingJobView } from '@shelfsight/contracts';
import { FileBlobStore, sampleSplitKey } from '@shelfsight/hub';
import { whichSet } from '@shelfsight/vision';
import { randomVector } from './support/samples';
import { eventually, hubFetch, startTestHub, type TestHub } from './support/test-hub';
import { groceryTrainPhotos as photos } from './support/grocery';
import { REFERENCE_BACKBONE, requireShared } from './support/workspace-data';

const BACKBONE_ID = 'mobilenet_v1_050_224';
const DIM = 512;
const VIEWS = 3;
const enabled = requireShared('training-job thumbnail augmentation tests');
const d = enabled ? describe : describe.skip;

async function post(hub: TestHub, path: string, body: unknown): Promise<{ status: number; body: TrainingJobView }> {
  const res = await hubFetch(`${hub.hub.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as TrainingJobView };
}

async function runToEnd(hub: TestHub, body: unknown): Promise<{ job: TrainingJobView; phases: string[] }> {
  const created = await post(hub, '/training-jobs', body);
  expect(created.status).toBe(201);
  const phases: string[] = [];
  const job = await eventually(async () => {
    const j = (await (await hubFetch(`${hub.hub.httpUrl}/training-jobs/${created.body.id}`)).json()) as TrainingJobView;
    if (phases[phases.length - 1] !== j.phase) phases.push(j.phase);
    return j.status === 'queued' || j.status === 'running' ? undefined : j;
  }, 240_000, `job ${created.body.id}`);
  return { job, phases };
}

/**
 * `augmentFromThumbnails` with real grocery photos as the samples' thumbnails and the
 * reference backbone: the worker decodes each labelled training sample's thumbnail from
 * the blob store, draws distorted views, runs the backbone on them and trains on the rows
 * beside the stored embeddings; corrupt or missing thumbnails are skipped and counted.
 */
d('training jobs: augmentFromThumbnails (real grocery photos)', () => {
  let sut: TestHub;
  const previousCache = process.env.SHELF_CACHE_DIR;
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-augment-'));
  const categories = ['Apple', 'Milk'];
  let expected: { augmented: number; skipped: number; samples: number };

  beforeAll(async () => {
    // A cache of its own: every view is computed by this test's jobs.
    process.env.SHELF_CACHE_DIR = join(work, 'cache');
    const csv = ['image,label', ...categories.flatMap((c) => photos(c).slice(0, 8).map((p) => `${p},${c}`))].join('\n') + '\n';
    writeFileSync(join(work, 'base.csv'), csv);
    // No labelled sample held out for evaluation here (EVAL_HOLDOUT_PERCENT=0): the split below is the worker's only one.
    // The stored embeddings are random stand-ins, so the check against the thumbnails is off (test/embedding-check.spec.ts has it).
    sut = await startTestHub('pglite', 'aedes', { TRAINING_WORKER: 'child', TRAINING_BACKBONE: REFERENCE_BACKBONE, EVAL_HOLDOUT_PERCENT: '0', EMBEDDING_CHECK_PERCENT: '0', EMBEDDING_CHECK_ALL_BELOW: '0' });

    // Labelled samples as agents send them: a small JPEG thumbnail and a stored embedding.
    const blobs = new FileBlobStore(join(sut.dataDir, 'blobs'));
    const c = new Client(sut.db.url);
    await c.connect();
    try {
      const inserted: Array<{ id: string; sampleId: string; label: string; photo: string }> = [];
      for (const label of categories) {
        for (const [i, photo] of photos(label).slice(20, 27).entries()) {
          const sampleId = `aug-${label}-${i}-${randomBytes(3).toString('hex')}`;
          const r = await c.query(
            `INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
              predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
              scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, state, label, labelled_by, labelled_at)
             VALUES ('dev-aug', $1, 'low_confidence', $1, 's', 'A', 'A-01-1-A', now(), $2, 0.4, '[]', 'v0', $3, $4, $5, $6, 1, 96, 96,
              $2, 0.4, 0.1, 1, '[]', 'v0', 'labelled', $2, 'key:test', now()) RETURNING id`,
            [sampleId, label, BACKBONE_ID, Buffer.from(randomVector(DIM, i + 1).buffer), DIM, '0'.repeat(64)],
          );
          inserted.push({ id: String(r.rows[0].id), sampleId, label, photo });
        }
      }
      // Only training-split samples are augmented (views of held-out ones would leak them).
      const training = inserted.filter((s) => whichSet(sampleSplitKey('dev-aug', s.sampleId), 10, 0) === 'training');
      expect(training.length).toBeGreaterThanOrEqual(4);
      const [corrupt, missing] = training;
      for (const s of inserted) {
        let sha: string;
        if (s === corrupt) sha = (await blobs.put(Buffer.from('\xff\xd8\xff\xe0 this is not a JPEG'))).sha256;
        else if (s === missing) sha = 'f'.repeat(64);
        else sha = (await blobs.put(await sharp(s.photo).resize(96, 96, { fit: 'cover' }).jpeg({ quality: 80 }).toBuffer())).sha256;
        await c.query(`UPDATE samples SET thumbnail_sha256 = $1 WHERE id = $2`, [sha, s.id]);
      }
      expected = { augmented: (training.length - 2) * VIEWS, skipped: 2, samples: inserted.length };
    } finally {
      await c.end();
    }
  }, 180_000);

  afterAll(async () => {
    await sut?.stop();
    if (previousCache === undefined) delete process.env.SHELF_CACHE_DIR;
    else process.env.SHELF_CACHE_DIR = previousCache;
  });

  it('adds distorted thumbnail views of the training samples to the rows, trains on them, and skips bad thumbnails without failing', async () => {
    const head = { type: 'softmax', epochs: 5 };
    const plain = await runToEnd(sut, { base: { dataset: join(work, 'base.csv') }, head });
    expect(plain.job).toMatchObject({ status: 'done', error: null });
    const augmented = await runToEnd(sut, { base: { dataset: join(work, 'base.csv') }, head, augmentFromThumbnails: { views: VIEWS } });
    expect(augmented.job).toMatchObject({ status: 'done', error: null });

    expect(augmented.phases).toContain('augmenting');
    expect(plain.phases).not.toContain('augmenting');
    const result = augmented.job.result as Record<string, number>;
    expect(result).toMatchObject({ sampleRows: expected.samples, augmentedRows: expected.augmented, skippedThumbnails: expected.skipped });
    const errors = (augmented.job.result as { skippedThumbnailSamples: Array<{ error: string }> }).skippedThumbnailSamples.map((s) => s.error);
    expect(errors).toHaveLength(2);
    expect(errors.filter((e) => /missing from the blob store/.test(e))).toHaveLength(1);
    // The rows grew by exactly the views, and the head was trained on them (training rows at the training phase).
    const plainResult = plain.job.result as Record<string, number>;
    expect(result.rows).toBe(plainResult.rows! + expected.augmented);
    expect(augmented.job.progress.rows).toBe(plain.job.progress.rows! + expected.augmented);
    expect(augmented.job.progress).toMatchObject({ augmentedRows: expected.augmented, skippedThumbnails: expected.skipped });
    const c = new Client(sut.db.url);
    await c.connect();
    const v = await c.query(`SELECT version, training_set_rows FROM model_versions WHERE version = ANY($1) ORDER BY training_set_rows`, [[plain.job.resultVersion, augmented.job.resultVersion]]);
    await c.end();
    expect(v.rows.map((r: { training_set_rows: number }) => r.training_set_rows)).toEqual([plainResult.rows, result.rows]);
  }, 600_000);
});
