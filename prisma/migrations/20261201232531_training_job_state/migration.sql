-- Job-state defects of issue #10 (item 4): one live attempt per job, resumable backlog re-scores.

-- At most one attempt of a job (its root) is queued or running: two retries of one failed
-- job cannot both run.
UPDATE "training_jobs" SET "root_id" = "id" WHERE "root_id" IS NULL;
CREATE UNIQUE INDEX "training_jobs_one_live_attempt_idx" ON "training_jobs" ("root_id") WHERE "status" IN ('queued', 'running');

-- A backlog re-score that hit an error is retried with backoff from where it stopped.
ALTER TABLE "model_versions" ADD COLUMN "rescore_after_id" BIGINT;
ALTER TABLE "model_versions" ADD COLUMN "rescore_attempts" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "model_versions" ADD COLUMN "rescore_retry_at" TIMESTAMPTZ(3);
ALTER TABLE "model_versions" ADD COLUMN "rescore_error" TEXT;
