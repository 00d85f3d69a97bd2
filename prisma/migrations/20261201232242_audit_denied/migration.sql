-- Denied requests (401, 403, 429) are audited too, coalesced: one row per client address
-- and reason per AUDIT_DENIED_INTERVAL_S, whose count says how many requests it stands for.
ALTER TABLE "audit_log" ADD COLUMN "address" TEXT;
-- why it was denied: missing, unknown, wrong, expired, revoked (401), role (403), rate, auth_failures (429); null when not denied
ALTER TABLE "audit_log" ADD COLUMN "reason" TEXT;
ALTER TABLE "audit_log" ADD COLUMN "count" INTEGER NOT NULL DEFAULT 1;
