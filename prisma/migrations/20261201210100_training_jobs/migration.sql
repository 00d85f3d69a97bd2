-- Retraining jobs: one row per attempt. The queue itself (delivery to exactly one worker)
-- is pg-boss's, in its own schema "pgboss"; this table is the job's state as operators see
-- it. A job reaches exactly one of done | failed | cancelled; a worker that disappears
-- (killed, restarted) leaves a running row whose heartbeat stops, which the hub and the
-- workers turn into failed with error 'interrupted'. A retry is a new row (attempt + 1).
CREATE TABLE "training_jobs" (
    "id" BIGSERIAL NOT NULL,
    -- The first attempt's id (itself for the first attempt) and this attempt's number.
    "root_id" BIGINT,
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "retry_of" BIGINT,
    -- The validated request: base, samples, head options.
    "spec" JSONB NOT NULL,
    -- queued | running | done | failed | cancelled
    "status" TEXT NOT NULL DEFAULT 'queued',
    -- queued | bottlenecks | training | evaluating | registering | done
    "phase" TEXT NOT NULL DEFAULT 'queued',
    -- epoch, epochs, step, steps, valAccuracy, rows, sampleRows, baseRows
    "progress" JSONB NOT NULL DEFAULT '{}',
    "error" TEXT,
    "queue_job_id" TEXT,
    "worker_id" TEXT,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "heartbeat_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "cancel_requested_at" TIMESTAMPTZ(3),
    "cancelled_by" TEXT,
    -- The registered version and what the worker reports (artifact sha256, seconds, metrics).
    "result_version" TEXT,
    "result" JSONB,

    CONSTRAINT "training_jobs_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "training_jobs_created_idx" ON "training_jobs" ("created_at" DESC, "id" DESC);
CREATE INDEX "training_jobs_running_idx" ON "training_jobs" ("heartbeat_at") WHERE "status" = 'running';
