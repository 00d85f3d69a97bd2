-- The release gate's record of a version: the reference it was compared with and, per
-- category, rows, accuracy before and after, discordant pairs and the McNemar p, and
-- which categories regressed or are unverified (too few evaluation rows).
ALTER TABLE "model_versions" ADD COLUMN "gate" JSONB;
-- An operator's release of a version whose only obstacle was unverified categories:
-- { by, reason, at } (also in the audit log).
ALTER TABLE "model_versions" ADD COLUMN "gate_override" JSONB;
-- What an uploader declared (manifest metrics, training rows and splits): informational,
-- never an input of the gate, which scores every version on the hub's own rows.
ALTER TABLE "model_versions" ADD COLUMN "declared" JSONB;
