-- API keys of people and tools: only a SHA-256 digest of the secret is kept (the key is
-- random and high-entropy; it is shown once, at creation). The key id is the public part
-- of `shk_<id>_<secret>`, safe to log.
CREATE TABLE "api_keys" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    -- viewer | operator | admin
    "role" TEXT NOT NULL,
    -- hex SHA-256 of the secret part
    "secret_sha256" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),
    "revoked_by" TEXT,
    "last_used_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "api_keys_role_check" CHECK ("role" IN ('viewer', 'operator', 'admin'))
);

-- Every state-changing request by a principal: who, what, when, with the request id that
-- also appears in that request's log lines.
CREATE TABLE "audit_log" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- key:<key id>, device:<device id> or anonymous
    "actor" TEXT NOT NULL,
    "role" TEXT,
    "method" TEXT NOT NULL,
    -- the route pattern, e.g. /api-keys/:id/revoke
    "route" TEXT NOT NULL,
    "params" JSONB NOT NULL DEFAULT '{}',
    "status" INTEGER NOT NULL,
    "request_id" TEXT,

    CONSTRAINT "audit_log_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "audit_log_at_idx" ON "audit_log" ("at" DESC, "id" DESC);
CREATE INDEX "audit_log_actor_idx" ON "audit_log" ("actor", "at" DESC);
