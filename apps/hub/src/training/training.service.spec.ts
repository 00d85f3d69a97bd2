import { HttpException, Logger } from '@nestjs/common';
import type { TrainingJobRequest, TrainingJobStatus } from '@shelfsight/contracts';
import { EventBus } from '../events/event-bus';
import { LiveAttemptExistsError, type TrainingJobRow, type TrainingJobsRepository } from './training-jobs.repository';
import type { TrainingQueueClient, TrainingQueueMessage } from './training-queue';
import { QUEUE_SEND_ATTEMPTS, TrainingService } from './training.service';

type Jobs = Pick<TrainingJobsRepository, 'create' | 'latestAttempt' | 'failQueued' | 'setQueueJobId' | 'get' | 'list' | 'requestCancel' | 'failStale'>;

/** The training_jobs table at its boundary, with the state rules its SQL holds (cancel, one live attempt per job). */
class FakeJobs implements Jobs {
  readonly rows = new Map<bigint, TrainingJobRow>();
  private next = 1n;
  failStaleError?: Error;

  create(spec: unknown, createdBy: string, retry?: { rootId: bigint; attempt: number; retryOf: bigint }): Promise<TrainingJobRow> {
    if (retry && [...this.rows.values()].some((r) => r.root_id === retry.rootId && (r.status === 'queued' || r.status === 'running'))) {
      return Promise.reject(new LiveAttemptExistsError(retry.rootId));
    }
    const id = this.next++;
    const row: TrainingJobRow = {
      id,
      root_id: retry?.rootId ?? id,
      attempt: retry?.attempt ?? 1,
      retry_of: retry?.retryOf ?? null,
      spec,
      status: 'queued',
      phase: 'queued',
      progress: {},
      error: null,
      queue_job_id: null,
      worker_id: null,
      created_by: createdBy,
      created_at: new Date('2026-12-01T00:00:00Z'),
      started_at: null,
      heartbeat_at: null,
      finished_at: null,
      cancel_requested_at: null,
      cancelled_by: null,
      result_version: null,
      result: null,
    };
    this.rows.set(id, row);
    return Promise.resolve({ ...row });
  }

  latestAttempt(rootId: bigint): Promise<TrainingJobRow | undefined> {
    return Promise.resolve([...this.rows.values()].filter((r) => r.root_id === rootId).sort((a, b) => b.attempt - a.attempt)[0]);
  }

  failQueued(id: bigint, error: string): Promise<TrainingJobRow | undefined> {
    const row = this.rows.get(id);
    if (row?.status !== 'queued') return Promise.resolve(undefined);
    Object.assign(row, { status: 'failed', error });
    return Promise.resolve(row);
  }

  setQueueJobId(id: bigint, queueJobId: string): Promise<void> {
    this.rows.get(id)!.queue_job_id = queueJobId;
    return Promise.resolve();
  }

  get(id: bigint): Promise<TrainingJobRow | undefined> {
    const row = this.rows.get(id);
    return Promise.resolve(row && { ...row });
  }

  list(limit: number, status?: TrainingJobStatus): Promise<TrainingJobRow[]> {
    return Promise.resolve([...this.rows.values()].filter((r) => !status || r.status === status).slice(0, limit).map((r) => ({ ...r })));
  }

  requestCancel(id: bigint, by: string): Promise<TrainingJobRow | undefined> {
    const row = this.rows.get(id);
    if (!row || (row.status !== 'queued' && row.status !== 'running')) return Promise.resolve(undefined);
    if (row.status === 'queued') row.status = 'cancelled';
    row.cancel_requested_at ??= new Date('2026-12-01T00:01:00Z');
    row.cancelled_by ??= by;
    return Promise.resolve({ ...row });
  }

  failStale(): Promise<bigint[]> {
    return this.failStaleError ? Promise.reject(this.failStaleError) : Promise.resolve([]);
  }

  set(id: bigint, change: Partial<TrainingJobRow>): void {
    Object.assign(this.rows.get(id)!, change);
  }
}

/** The queue (pg-boss) at its boundary: each send answers the next of `answers` (an id, null: not taken, or an error). */
class FakeQueue implements TrainingQueueClient {
  answers: Array<string | null | Error> = [];
  readonly sent: TrainingQueueMessage[] = [];
  readonly cancelled: string[] = [];
  private ids = 0;

  send(message: TrainingQueueMessage): Promise<string | null> {
    this.sent.push(message);
    const a = this.answers.length > 0 ? this.answers.shift()! : `q${++this.ids}`;
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  }

  cancel(queueJobId: string): Promise<void> {
    this.cancelled.push(queueJobId);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

const request = { base: { version: 'v1' } } as TrainingJobRequest;
/** The refusal's class and body, as the client sees them. */
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: HttpException) => `${e.constructor.name} ${e.getStatus()} ${JSON.stringify(e.getResponse())}`,
  );

describe(TrainingService.name, () => {
  let jobs: FakeJobs;
  let queue: FakeQueue;
  let pauses: number[];
  let events: EventBus;
  let published: Array<{ id: number; status: string }>;
  let warned: string[];
  let sut: TrainingService;

  beforeEach(() => {
    jobs = new FakeJobs();
    queue = new FakeQueue();
    pauses = [];
    events = new EventBus();
    published = [];
    warned = [];
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((m: unknown) => void warned.push(String(m)));
    jest.spyOn(events, 'publish').mockImplementation((_n, data) => void published.push(data as { id: number; status: string }));
    const pause = (ms: number) => Promise.resolve(void pauses.push(ms));
    sut = new TrainingService(jobs as unknown as TrainingJobsRepository, { trainingHeartbeatTimeoutS: 30 }, queue, pause, events);
  });

  it('records a job, queues its message and keeps the queue’s id; live screens see it', async () => {
    const dto = await sut.start(request, 'key:ops');
    expect(dto).toMatchObject({ id: 1, status: 'queued', attempt: 1, createdBy: 'key:ops' });
    expect(queue.sent).toEqual([{ jobId: '1' }]);
    expect(jobs.rows.get(1n)!.queue_job_id).toBe('q1');
    expect(published).toEqual([expect.objectContaining({ id: 1, status: 'queued' })]);
  });

  it('retries a failed send with backoff (200 ms, then 800 ms) and keeps the job queued once the queue takes it', async () => {
    queue.answers = [new Error('ECONNREFUSED'), null];
    await expect(sut.start(request, 'key:ops')).resolves.toMatchObject({ status: 'queued' });
    expect(queue.sent).toHaveLength(3);
    expect(pauses).toEqual([200, 800]);
    expect(jobs.rows.get(1n)!.queue_job_id).toBe('q1');
  });

  it(`fails the job with the reason, and answers 503, when the queue does not take it in ${QUEUE_SEND_ATTEMPTS} sends`, async () => {
    queue.answers = [new Error('ECONNREFUSED'), new Error('ECONNREFUSED'), new Error('pg-boss stopped')];
    expect(await refusal(sut.start(request, 'key:ops'))).toMatch(/^TrainingQueueUnavailableError 503 .*retry it with POST \/training-jobs\/1\/retry/);
    expect(queue.sent).toHaveLength(QUEUE_SEND_ATTEMPTS);
    expect(jobs.rows.get(1n)).toMatchObject({ status: 'failed', error: 'not queued: pg-boss stopped (after 3 attempts)' });
  });

  it('cancels a queued job at once (and its queue message); asks a running one to stop; refuses a finished one', async () => {
    await sut.start(request, 'key:ops');
    expect(await sut.cancel('1', 'key:ops')).toMatchObject({ status: 'cancelled', cancelledBy: 'key:ops' });
    expect(queue.cancelled).toEqual(['q1']);

    await sut.start(request, 'key:ops');
    jobs.set(2n, { status: 'running' });
    expect(await sut.cancel('2', 'key:ops')).toMatchObject({ status: 'running', cancelRequestedAt: '2026-12-01T00:01:00.000Z' });
    expect(queue.cancelled).toEqual(['q1']);

    jobs.set(2n, { status: 'done' });
    expect(await refusal(sut.cancel('2', 'key:ops'))).toMatch(/^TrainingJobStateError 409 .*is done: only a queued or running job can be cancelled/);
  });

  it('retries a failed job as a new attempt of the same root, and refuses a job that is not failed or cancelled', async () => {
    await sut.start(request, 'key:ops');
    expect(await refusal(sut.retry('1', 'key:ops'))).toMatch(/TrainingJobStateError .*only a failed or cancelled job can be retried/);
    jobs.set(1n, { status: 'failed' });
    expect(await sut.retry('1', 'key:ana')).toMatchObject({ id: 2, rootId: 1, attempt: 2, retryOf: 1, status: 'queued', createdBy: 'key:ana' });
    expect(queue.sent.map((m) => m.jobId)).toEqual(['1', '2']);
  });

  it('retries only the newest attempt, and never while another attempt is live', async () => {
    await sut.start(request, 'key:ops');
    jobs.set(1n, { status: 'failed' });
    await sut.retry('1', 'key:ops');
    jobs.set(2n, { status: 'cancelled' });
    expect(await refusal(sut.retry('1', 'key:ops'))).toMatch(/has a newer attempt \(2: job 2, cancelled\): retry that one/);
    // A concurrent retry got there first: the database's unique index refuses the second live attempt.
    const concurrent = jest.spyOn(jobs, 'latestAttempt').mockResolvedValueOnce(undefined);
    jobs.set(2n, { status: 'running' });
    expect(await refusal(sut.retry('1', 'key:ops'))).toMatch(/^TrainingJobStateError 409/);
    expect(concurrent).toHaveBeenCalled();
  });

  it('answers 404 for an id that is not a job (unknown, or not a number)', async () => {
    expect(await refusal(sut.get('7'))).toMatch(/^TrainingJobNotFoundError 404/);
    expect(await refusal(sut.get('1; DROP TABLE'))).toMatch(/^TrainingJobNotFoundError 404/);
  });

  it('logs a failed sweep instead of throwing (it runs on a timer)', async () => {
    jobs.failStaleError = new Error('database is down');
    await expect(sut.sweep()).resolves.toBeUndefined();
    expect(warned).toEqual([expect.stringMatching(/training job sweep failed: database is down/)]);
  });

  it('while someone watches, publishes a job when its progress changes and once more when it leaves the active set', async () => {
    jest.spyOn(events, 'listenerCount', 'get').mockReturnValue(1);
    await sut.start(request, 'key:ops');
    published.length = 0;
    await sut.watch();
    await sut.watch(); // nothing changed
    jobs.set(1n, { status: 'running', phase: 'training', progress: { epoch: 1 } as TrainingJobRow['progress'] });
    await sut.watch();
    jobs.set(1n, { status: 'done', phase: 'done' });
    await sut.watch();
    await sut.watch(); // gone, and published once already
    expect(published.map((d) => d.status)).toEqual(['queued', 'running', 'done']);
  });

  it('does not read the database to watch when nobody is watching', async () => {
    const list = jest.spyOn(jobs, 'list');
    await sut.watch();
    expect(list).not.toHaveBeenCalled();
  });
});
