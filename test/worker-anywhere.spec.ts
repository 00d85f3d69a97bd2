import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainingJobView } from '@shelfsight/contracts';
import { S3BlobStore } from '@shelfsight/hub';
import { writeColourDataset } from '../libs/vision/src/testing/fixtures';
import { startS3Server, type TestS3Server } from './support/s3-server';
import { hasExternalPostgres } from './support/services';
import { spawnShelf, type ShelfProcess } from './support/shelf-process';
import { eventually, hubFetch, startTestHub, type TestHub } from './support/test-hub';

const BACKBONE = 'nsfw-mobilenet-v2';
const d = hasExternalPostgres() ? describe : describe.skip;

/** Files under `dir` (recursively); none when it does not exist. */
function filesUnder(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : [];
}

d('a worker on "another machine": only DATABASE_URL and the bucket in common with the hub (BLOB_STORE=s3)', () => {
  let s3: TestS3Server;
  let hub: TestHub;
  let worker: ShelfProcess;
  const workerDataDir = mkdtempSync(join(tmpdir(), 'shelfsight-remote-worker-'));
  // The dataset is on the worker's machine only: the hub's dataset root is another, empty folder.
  const workerDatasets = mkdtempSync(join(tmpdir(), 'shelfsight-remote-datasets-'));
  const hubDatasets = mkdtempSync(join(tmpdir(), 'shelfsight-hub-datasets-'));

  beforeAll(async () => {
    await writeColourDataset(join(workerDatasets, 'colours'), { red: [200, 30, 30], green: [30, 200, 30] }, 6);
    s3 = await startS3Server();
    hub = await startTestHub('postgres', 'aedes', { ...s3.env, TRAINING_DATASET_ROOTS: hubDatasets });
    worker = spawnShelf('worker', {}, {
      ...s3.env,
      DATABASE_URL: hub.db.url,
      DATA_DIR: workerDataDir,
      WORKER_ID: `remote-${randomBytes(2).toString('hex')}`,
      TRAINING_DATASET_ROOTS: workerDatasets,
    });
    await eventually(async () => (worker.output().includes('training worker ready') ? true : undefined), 120_000, 'worker ready').catch((err: Error) => {
      throw new Error(`${err.message}\n${worker.output().slice(-3000)}`);
    });
  }, 240_000);

  afterAll(async () => {
    await worker?.stop();
    await hub?.stop();
    await s3?.stop();
    for (const dir of [workerDataDir, workerDatasets, hubDatasets]) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  const runJob = async (body: unknown): Promise<TrainingJobView> => {
    const res = await hubFetch(`${hub.hub.httpUrl}/training-jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const created = (await res.json()) as TrainingJobView;
    expect(res.status).toBe(201);
    const get = async () => (await (await hubFetch(`${hub.hub.httpUrl}/training-jobs/${created.id}`)).json()) as TrainingJobView;
    return eventually(async () => {
      const j = await get();
      return j.status !== 'queued' && j.status !== 'running' ? j : undefined;
    }, 300_000, `job ${created.id} ended`).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await get())}\n${worker.output().slice(-3000)}`);
    });
  };

  it('runs jobs whose inputs and outputs travel through the bucket, and the hub serves the artifact', async () => {
    // A dataset base on the worker's machine: the worker writes the version's artifact and training rows to the bucket.
    const first = await runJob({ base: { dataset: 'colours' }, backbone: BACKBONE, samples: 'none', head: { type: 'softmax', epochs: 5, seed: 1 } });
    expect([first.status, first.error]).toEqual(['done', null]);
    // A version base: its training rows come back from the bucket (the hub never had them on disk).
    const second = await runJob({ base: { version: first.resultVersion }, samples: 'none', head: { type: 'softmax', epochs: 5, seed: 2 } });
    expect([second.status, second.error]).toEqual(['done', null]);
    const version = second.resultVersion as string;

    // The hub (another DATA_DIR) serves the artifact from the bucket: whole, and a range of it (devices resume downloads).
    const whole = await hubFetch(`${hub.hub.httpUrl}/models/${version}/artifact`);
    expect(whole.status).toBe(200);
    const tar = Buffer.from(await whole.arrayBuffer());
    const sha256 = createHash('sha256').update(tar).digest('hex');
    expect(whole.headers.get('x-artifact-sha256')).toBe(sha256);
    const bucket = new S3BlobStore(s3.options);
    try {
      expect((await bucket.get(sha256))?.equals(tar)).toBe(true);
    } finally {
      bucket.close();
    }
    const part = await hubFetch(`${hub.hub.httpUrl}/rollouts/artifacts/${version}`, { headers: { range: 'bytes=100-1099' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-1099/${tar.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(tar.subarray(100, 1100))).toBe(true);

    // Nothing went through either machine's DATA_DIR/blobs.
    expect(filesUnder(join(hub.dataDir, 'blobs'))).toEqual([]);
    expect(filesUnder(join(workerDataDir, 'blobs'))).toEqual([]);
    expect(worker.output()).toContain('"msg":"job done"');
  }, 600_000);
});
