import PgBoss from 'pg-boss';

/** The pg-boss queue training jobs go through; its payload is the training_jobs id. */
export const TRAINING_QUEUE = 'training-jobs';

export interface TrainingQueueMessage {
  jobId: string;
}

/**
 * A pg-boss client on the hub's database (schema `pgboss`, created on first start).
 * `supervise` runs pg-boss's maintenance (expiry, archiving); workers do it, hubs need not.
 * A job is delivered to one worker (SELECT … FOR UPDATE SKIP LOCKED) and never retried by
 * pg-boss: a job cut off by a crash ends as failed: interrupted and an operator retries it.
 */
export async function startTrainingQueue(databaseUrl: string, opts: { supervise: boolean; max?: number }): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: databaseUrl, max: opts.max ?? 2, supervise: opts.supervise, schedule: false, application_name: 'shelfsight-training' });
  boss.on('error', (err: Error) => process.stderr.write(`training queue: ${err.message}\n`));
  await boss.start();
  // Replicas starting together race in pg-boss's create_queue (insert + partition DDL) and
  // PostgreSQL may pick one as a deadlock victim (40P01): the queue then exists or the next try
  // makes it, so try again after a short random pause instead of failing the hub's start.
  for (let attempt = 1; ; attempt++) {
    try {
      await boss.createQueue(TRAINING_QUEUE, { name: TRAINING_QUEUE, retryLimit: 0, expireInHours: 12 });
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200 * attempt));
    }
  }
  return boss;
}

/** What the hub needs of the queue: send a job's message, cancel a queued one. */
export interface TrainingQueueClient {
  /** The queue's id of the message; null when the queue did not take it. */
  send(message: TrainingQueueMessage): Promise<string | null>;
  cancel(queueJobId: string): Promise<void>;
  stop(): Promise<void>;
}

/** Injection token of the hub's queue client (tests give a fake one). */
export const TRAINING_QUEUE_CLIENT = Symbol('TRAINING_QUEUE_CLIENT');

/** Injection token of the wait between queue send attempts (optional; default a real timer). */
export const TRAINING_SEND_PAUSE = Symbol('TRAINING_SEND_PAUSE');

/** The pg-boss implementation of {@link TrainingQueueClient}. */
export async function pgBossTrainingQueue(databaseUrl: string): Promise<TrainingQueueClient> {
  const boss = await startTrainingQueue(databaseUrl, { supervise: false });
  return {
    send: (message) => boss.send(TRAINING_QUEUE, message, { retryLimit: 0 }),
    cancel: async (id) => {
      await boss.cancel(TRAINING_QUEUE, id);
    },
    stop: () => boss.stop({ graceful: false, wait: true, close: true }),
  };
}
