-- Rollout keys the database cannot give away (TUF-style root and release roles).
-- Private keys no longer live in the database: the hub signs with a release key it is given
-- (ROLLOUT_SIGNING_KEY / ROLLOUT_RELEASE_KEY_FILE, or a generated one in DATA_DIR, mode 0600),
-- and devices trust the release keys a root-signed list names. The old table, with the
-- private half of every generated key, goes whole.
DROP TABLE "rollout_signing_keys";

-- Root-signed release key lists the hub has published (public, signed material: whoever
-- edits a row only makes devices refuse it). The newest version of the hub's root is current.
CREATE TABLE "rollout_key_lists" (
  "root_key_id" TEXT NOT NULL,
  "version"     BIGINT NOT NULL,
  "signed"      JSONB NOT NULL,
  "created_at"  TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
  PRIMARY KEY ("root_key_id", "version")
);

-- The newest release counter signed per (backbone, model line), whatever the label list:
-- a device never activates a release older than the newest it activated on that line.
-- Starts above every counter signed per (backbone, label list) before.
CREATE TABLE "rollout_line_counters" (
  "backbone_id" TEXT NOT NULL,
  "model_line"  TEXT NOT NULL,
  "counter"     BIGINT NOT NULL,
  PRIMARY KEY ("backbone_id", "model_line")
);
INSERT INTO "rollout_line_counters" ("backbone_id", "model_line", "counter")
  SELECT "backbone_id", 'default', max("counter") FROM "rollout_release_counters" GROUP BY "backbone_id";
