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
  await boss.createQueue(TRAINING_QUEUE, { name: TRAINING_QUEUE, retryLimit: 0, expireInHours: 12 });
  return boss;
}
