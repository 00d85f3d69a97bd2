-- Fleet rollouts: signing keys, release counters, rollouts and their devices.

-- Ed25519 keys the hub signs manifests with. A generated key keeps its private half here
-- (PKCS8 DER, base64), so replicas share it; a key from ROLLOUT_SIGNING_KEY is listed with
-- its public half only. Every key not retired is trusted (GET /rollouts/trusted-keys).
CREATE TABLE "rollout_signing_keys" (
  "key_id"      TEXT PRIMARY KEY,
  "public_key"  TEXT NOT NULL,
  "private_key" TEXT,
  "source"      TEXT NOT NULL,
  "created_at"  TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
  "retired_at"  TIMESTAMPTZ(3)
);

-- The newest release counter signed per (backbone, label list); only ever increases.
CREATE TABLE "rollout_release_counters" (
  "backbone_id" TEXT NOT NULL,
  "labels_hash" TEXT NOT NULL,
  "counter"     BIGINT NOT NULL,
  PRIMARY KEY ("backbone_id", "labels_hash")
);

CREATE TABLE "rollouts" (
  "id"               TEXT PRIMARY KEY,
  "model_version"    TEXT NOT NULL REFERENCES "model_versions" ("version"),
  "target"           JSONB NOT NULL,
  "stages"           JSONB NOT NULL,
  "policy"           JSONB,
  -- running | paused | completed | halted | aborted | rolled_back
  "state"            TEXT NOT NULL,
  "current_stage"    INTEGER NOT NULL DEFAULT 0,
  -- per stage: when it started (ISO time) or null
  "stage_started"    JSONB NOT NULL DEFAULT '[]',
  "halt_reason"      TEXT,
  "signed"           JSONB NOT NULL,
  "created_by"       TEXT NOT NULL,
  "created_at"       TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
  "updated_at"       TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
  "finished_at"      TIMESTAMPTZ(3)
);
CREATE INDEX "rollouts_created_idx" ON "rollouts" ("created_at" DESC, "id" DESC);
CREATE INDEX "rollouts_state_idx" ON "rollouts" ("state");

CREATE TABLE "rollout_devices" (
  "rollout_id"       TEXT NOT NULL REFERENCES "rollouts" ("id") ON DELETE CASCADE,
  "device_id"        TEXT NOT NULL,
  "stage"            INTEGER NOT NULL,
  -- pending (not offered yet) | offered | downloading | verified | shadowing | active | rejected | rolled_back
  "state"            TEXT NOT NULL DEFAULT 'pending',
  "reason"           TEXT,
  "detail"           TEXT,
  "previous_version" TEXT,
  "active_version"   TEXT,
  "shadow"           JSONB,
  "health"           JSONB,
  "offered_at"       TIMESTAMPTZ(3),
  "status_at"        TIMESTAMPTZ(3),
  "updated_at"       TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
  -- true while the rollout is unfinished (running, paused, halted): one such rollout per device
  "open"             BOOLEAN NOT NULL DEFAULT true,
  PRIMARY KEY ("rollout_id", "device_id")
);
CREATE UNIQUE INDEX "rollout_devices_open_device_key" ON "rollout_devices" ("device_id") WHERE "open";
CREATE INDEX "rollout_devices_device_idx" ON "rollout_devices" ("device_id");
