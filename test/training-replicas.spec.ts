import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import type { TrainingJobView } from '@shelfsight/contracts';
import { loadHubConfig, startHub, type HubHandle } from '@shelfsight/hub';
import { writeColourDataset } from '../libs/vision/src/testing/fixtures';
import { createTestDatabase, type TestDatabase } from './support/databases';
import { hasExternalPostgres } from './support/services';
import { spawnShelf, type ShelfProcess } from './support/shelf-process';
import { TEST_ADMIN_KEY, hubFetch, eventually } from './support/test-hub';

const BACKBONE = 'nsfw-mobilenet-v2';
const d = hasExternalPostgres() ? describe : describe.skip;

d('training jobs with two hub replicas and two workers on one database (postgres)', () => {
  let db: TestDatabase;
  const hubs: HubHandle[] = [];
  const workers: ShelfProcess[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'shelfsight-replicas-'));
  const dataset = mkdtempSync(join(tmpdir(), 'shelfsight-replicas-data-'));

  beforeAll(async () => {
    await writeColourDataset(dataset, { red: [200, 30, 30], green: [30, 200, 30] }, 6);
    db = await createTestDatabase('postgres');
    for (let i = 0; i < 2; i++) {
      const env = { HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_HOST: '127.0.0.1', DATABASE_URL: db.url, DATA_DIR: dataDir, TRAINING_WORKER: 'off', TRAINING_HEARTBEAT_TIMEOUT_S: '10', HUB_API_KEY: TEST_ADMIN_KEY, TRAINING_DATASET_ROOTS: tmpdir() };
      hubs.push(await startHub(loadHubConfig({}, env), { logLevels: false }));
    }
    for (let i = 0; i < 2; i++) {
      workers.push(spawnShelf('worker', {}, { DATABASE_URL: db.url, DATA_DIR: dataDir, WORKER_ID: `replica-worker-${i}-${randomBytes(2).toString('hex')}`, TRAINING_HEARTBEAT_TIMEOUT_S: '10', TRAINING_DATASET_ROOTS: tmpdir() }));
    }
    await eventually(async () => (workers.every((w) => w.output().includes('training worker ready')) ? true : undefined), 60_000, 'workers ready');
  }, 120_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    for (const h of hubs) await h.stop();
    await db?.drop();
  });

  it('runs each job exactly once, whichever hub queued it', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const hub = hubs[i % 2] as HubHandle;
      const res = await hubFetch(`${hub.httpUrl}/training-jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ base: { dataset }, backbone: BACKBONE, samples: 'none', head: { type: 'softmax', epochs: 10, seed: i + 1 } }),
      });
      expect(res.status).toBe(201);
      ids.push(((await res.json()) as TrainingJobView).id);
    }
    const ended = await eventually(async () => {
      const all = (await (await hubFetch(`${(hubs[1] as HubHandle).httpUrl}/training-jobs`)).json()) as TrainingJobView[];
      return all.length === 4 && all.every((j) => j.status !== 'queued' && j.status !== 'running') ? all : undefined;
    }, 180_000, 'all jobs ended');
    expect(ended.map((j) => [j.status, j.error])).toEqual(ids.map(() => ['done', null]));
    // Each job was started by exactly one worker (the workers log every start).
    const starts = workers.flatMap((w) => w.output().split('\n').filter((l) => l.includes('"msg":"job started"')).map((l) => (JSON.parse(l) as { jobId: string }).jobId));
    expect(starts.sort()).toEqual(ids.map(String).sort());
    const c = new Client(db.url);
    await c.connect();
    const versions = await c.query(`SELECT count(DISTINCT version)::int AS n FROM model_versions WHERE source = 'job'`);
    const queue = await c.query(`SELECT state, count(*)::int AS n FROM pgboss.job WHERE name = 'training-jobs' GROUP BY state`);
    await c.end();
    expect(versions.rows[0].n).toBe(4);
    expect(queue.rows).toEqual([{ state: 'completed', n: 4 }]);
  }, 240_000);

  it('fails a job as interrupted when a standalone worker dies and stops beating', async () => {
    // One worker left, then killed mid-job: nobody is left to report, the heartbeat sweep decides.
    await (workers[1] as ShelfProcess).stop();
    const res = await hubFetch(`${(hubs[0] as HubHandle).httpUrl}/training-jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ base: { dataset }, backbone: BACKBONE, samples: 'none', head: { type: 'softmax', epochs: 1000, batchSize: 1 } }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as TrainingJobView;
    const get = async () => (await (await hubFetch(`${(hubs[0] as HubHandle).httpUrl}/training-jobs/${id}`)).json()) as TrainingJobView;
    await eventually(async () => ((await get()).phase === 'training' ? true : undefined), 120_000, 'training').catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await get())}\n${(workers[0] as ShelfProcess).output().slice(-3000)}`);
    });
    await (workers[0] as ShelfProcess).kill();
    const end = await eventually(async () => {
      const j = await get();
      return j.status !== 'running' ? j : undefined;
    }, 60_000, 'interrupted');
    expect(end).toMatchObject({ status: 'failed', error: 'interrupted', resultVersion: null });
  }, 240_000);

  it('never loads TensorFlow in the hub process, also after serving a training job', async () => {
    const scratch = await createTestDatabase('postgres');
    try {
      const job = JSON.stringify({ base: { dataset }, backbone: BACKBONE, samples: 'none', head: { type: 'softmax', epochs: 3 } });
      const { stdout } = await promisify(execFile)(process.execPath, ['-r', join(__dirname, '..', 'bin', 'register.js'), join(__dirname, 'support', 'hub-tensorflow-probe.ts')], {
        env: { ...process.env, DATABASE_URL: scratch.url, PROBE_JOB: job, HUB_API_KEY: TEST_ADMIN_KEY, TRAINING_DATASET_ROOTS: tmpdir() },
        timeout: 180_000,
      });
      const probe = JSON.parse(stdout.trim().split('\n').pop() as string) as { status: string; tensorflowModules: number };
      expect(probe).toMatchObject({ status: 'done', tensorflowModules: 0 });
    } finally {
      await scratch.drop();
    }
  }, 240_000);
});
