import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LABELS_FILE, MANIFEST_FILE, WEIGHTS_FILE } from '@shelfsight/contracts';
import { applyMigrations, createPrismaClient, type PrismaClient } from '@shelfsight/db';
import {
  FileBlobStore,
  QUEUE_SEND_ATTEMPTS,
  registerAndCompleteJob,
  TrainingJobLostError,
  TrainingJobsRepository,
  TrainingJobStateError,
  TrainingQueueUnavailableError,
  TrainingService,
  type BlobStore,
  type TrainedVersion,
  type TrainingQueueClient,
  type TrainingQueueMessage,
} from '@shelfsight/hub';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/databases';
import { rowsOf, tinyArtifact } from './support/model-artifacts';
import { hasExternalPostgres } from './support/services';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

/** The queue at its boundary: sends fail while `failures` lasts, then succeed. */
class FakeQueue implements TrainingQueueClient {
  sent: TrainingQueueMessage[] = [];
  attempts = 0;
  constructor(public failures: number, public readonly error = 'connection refused') {}
  async send(message: TrainingQueueMessage): Promise<string | null> {
    this.attempts += 1;
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error(this.error);
    }
    this.sent.push(message);
    return `q-${message.jobId}`;
  }
  async cancel(): Promise<void> {}
  async stop(): Promise<void> {}
}

/** A blob store whose puts wait until released, so a test can act while a registration transaction is open. */
class GatedBlobStore extends FileBlobStore {
  private signal!: () => void;
  private gate: Promise<void> | undefined;
  readonly entered = new Promise<void>((r) => (this.signal = r));

  /** Hold every put until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    return release;
  }

  override async put(data: Buffer) {
    this.signal();
    if (this.gate) await this.gate;
    return super.put(data);
  }
}

const SPEC = { base: { dataset: 'nowhere' }, samples: 'all labelled', head: { type: 'softmax' }, augmentFromThumbnails: false } as const;

describe(TrainingService.name, () => {
  for (const variant of variants) {
    const d = variant.available() ? describe : describe.skip;
    d(`on ${variant.db}`, () => {
      let db: TestDatabase;
      let prisma: PrismaClient;
      let jobs: TrainingJobsRepository;
      const pauses: number[] = [];
      const service = (queue: TrainingQueueClient) => new TrainingService(jobs, { trainingHeartbeatTimeoutS: 30 }, queue, async (ms) => void pauses.push(ms));

      beforeAll(async () => {
        db = await createTestDatabase(variant.db);
        await applyMigrations(db.url);
        prisma = createPrismaClient(db.url, variant.db === 'pglite' ? 1 : 4); // PGlite: one connection, as the hub uses it
        jobs = new TrainingJobsRepository(prisma);
      }, 120_000);

      afterAll(async () => {
        await prisma?.$disconnect();
        await db?.drop();
      });

      beforeEach(() => {
        pauses.length = 0;
      });

      it('retries a failed queue send with backoff and queues the job', async () => {
        const queue = new FakeQueue(1);
        const job = await service(queue).start(SPEC, 'key:test');
        expect(job.status).toBe('queued');
        expect(queue.attempts).toBe(2);
        expect(pauses).toEqual([200]);
        expect((await jobs.get(BigInt(job.id)))?.queue_job_id).toBe(`q-${job.id}`);
      });

      it('records a job the queue never took as failed with the reason, never queued forever, and it can be retried', async () => {
        const queue = new FakeQueue(QUEUE_SEND_ATTEMPTS);
        const sut = service(queue);
        const err = await sut.start(SPEC, 'key:test').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TrainingQueueUnavailableError);
        expect((err as TrainingQueueUnavailableError).getStatus()).toBe(503);
        expect(pauses).toEqual([200, 800]);
        const [row] = await jobs.list(1);
        expect(row).toMatchObject({ status: 'failed', error: `not queued: connection refused (after ${QUEUE_SEND_ATTEMPTS} attempts)` });
        expect((err as Error).message).toContain(`training job ${row!.id} failed`);
        // The queue is back: the retry is a new attempt that is queued.
        const retry = await sut.retry(String(row!.id), 'key:test');
        expect(retry).toMatchObject({ status: 'queued', attempt: 2, retryOf: Number(row!.id) });
      });

      it('lets only one attempt of a job be live: concurrent retries give one new attempt and a 409, an older attempt cannot be retried', async () => {
        const sut = service(new FakeQueue(0));
        const first = await sut.start(SPEC, 'key:test');
        await jobs.failQueued(BigInt(first.id), 'interrupted');
        const results = await Promise.allSettled([sut.retry(String(first.id), 'key:a'), sut.retry(String(first.id), 'key:b'), sut.retry(String(first.id), 'key:c')]);
        const ok = results.filter((r) => r.status === 'fulfilled');
        const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(ok).toHaveLength(1);
        expect(refused).toHaveLength(2);
        for (const r of refused) expect(r.reason).toBeInstanceOf(TrainingJobStateError);
        const live = await prisma.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM training_jobs WHERE root_id = ${BigInt(first.id)} AND status IN ('queued', 'running')`;
        expect(live[0]?.n).toBe(1);
        // Once the new attempt failed too, only it (the newest) can be retried.
        const second = (ok[0] as PromiseFulfilledResult<{ id: number }>).value;
        await jobs.failQueued(BigInt(second.id), 'interrupted');
        await expect(sut.retry(String(first.id), 'key:test')).rejects.toThrow(/newer attempt/);
        await expect(sut.retry(String(second.id), 'key:test')).resolves.toMatchObject({ attempt: 3, rootId: first.id });
      });
    });
  }
});

describe(registerAndCompleteJob.name, () => {
  for (const variant of variants) {
    const d = variant.available() ? describe : describe.skip;
    d(`on ${variant.db}`, () => {
      let db: TestDatabase;
      let prisma: PrismaClient;
      let jobs: TrainingJobsRepository;
      const gate = { gateMaxOverallDrop: 0.02, gateMaxCategoryDrop: 0.05 };
      let n = 0;

      /** A claimed (running) job and a trained artifact folder for it. */
      const runningJob = async (workerId: string): Promise<{ id: bigint; version: TrainedVersion; name: string }> => {
        const row = await jobs.create(SPEC, 'key:test');
        await jobs.claim(row.id, workerId);
        const name = `job-version-${variant.db}-${++n}-${Date.now()}`;
        const files = tinyArtifact({ version: name, labels: ['apples', 'milk'], kernel: [[4, 0], [0, 4]] });
        const dir = mkdtempSync(join(tmpdir(), 'shelfsight-jobver-'));
        writeFileSync(join(dir, MANIFEST_FILE), files.manifest);
        writeFileSync(join(dir, WEIGHTS_FILE), files.weights);
        writeFileSync(join(dir, LABELS_FILE), files.labels);
        const rows = rowsOf(['apples', 'milk'], [
          { label: 'apples', x: [1, 0] },
          { label: 'milk', x: [0, 1] },
          { label: 'apples', x: [1, 0], split: 2 },
          { label: 'milk', x: [0, 1], split: 2 },
        ]);
        return { id: row.id, name, version: { artifactDir: dir, rows, lineage: { jobId: row.id.toString(), base: {}, sampleIds: [], baseRows: 4, sampleRows: 0 }, createdBy: 'key:test' } };
      };
      const versionRow = async (name: string) => (await prisma.$queryRaw<Array<{ version: string }>>`SELECT version FROM model_versions WHERE version = ${name}`)[0];

      beforeAll(async () => {
        db = await createTestDatabase(variant.db);
        await applyMigrations(db.url);
        prisma = createPrismaClient(db.url, variant.db === 'pglite' ? 1 : 4); // PGlite: one connection, as the hub uses it
        jobs = new TrainingJobsRepository(prisma);
      }, 120_000);

      afterAll(async () => {
        await prisma?.$disconnect();
        await db?.drop();
      });

      it('a sweep during registration waits for it and then finds the job done, linked to its version', async () => {
        const { id, name, version } = await runningJob('w1');
        const blobs = new GatedBlobStore(join(mkdtempSync(join(tmpdir(), 'shelfsight-blobs-')), 'blobs'));
        const release = blobs.hold();
        const registering = registerAndCompleteJob(prisma, blobs as BlobStore, gate, { jobId: id.toString(), workerId: 'w1' }, version, (r) => ({ version: r.version }));
        await blobs.entered; // inside the transaction, job row locked
        let swept: bigint[] | undefined;
        const sweep = jobs.failStale(0).then((ids) => (swept = ids));
        await new Promise((r) => setTimeout(r, 300));
        expect(swept).toBeUndefined(); // blocked on the job's row
        release();
        const { registered } = await registering;
        await sweep;
        expect(swept).toEqual([]);
        expect(registered.version).toBe(name);
        expect(await jobs.get(id)).toMatchObject({ status: 'done', phase: 'done', result_version: name, error: null });
      });

      it('a job swept as interrupted before registration registers nothing', async () => {
        const { id, name, version } = await runningJob('w2');
        expect(await jobs.failStale(0)).toContain(id);
        const blobs = new FileBlobStore(join(mkdtempSync(join(tmpdir(), 'shelfsight-blobs-')), 'blobs'));
        await expect(registerAndCompleteJob(prisma, blobs, gate, { jobId: id.toString(), workerId: 'w2' }, version, () => ({}))).rejects.toBeInstanceOf(TrainingJobLostError);
        expect(await versionRow(name)).toBeUndefined();
        expect(await jobs.get(id)).toMatchObject({ status: 'failed', error: 'interrupted', result_version: null });
      });
    });
  }
});
