-- The model registry: every head version the hub knows (trained by a job, or trained
-- elsewhere with `shelf train` and registered), its lineage, metrics on the evaluation
-- set frozen for its category set, and the gate's verdict. Artifacts and training sets
-- are blobs in the hub's content-addressed store.
CREATE TABLE "model_versions" (
    "version" TEXT NOT NULL,
    "backbone_id" TEXT NOT NULL,
    "backbone_checksum" TEXT NOT NULL,
    -- Category names in head output order.
    "labels" JSONB NOT NULL,
    -- sha256 of the sorted category names: versions with the same set are comparable.
    "category_set" TEXT NOT NULL,
    "head_type" TEXT NOT NULL,
    "manifest" JSONB NOT NULL,
    "artifact_sha256" TEXT NOT NULL,
    "artifact_bytes" BIGINT NOT NULL,
    -- Training rows (embeddings + labels) the version was trained on, when known.
    "training_set_sha256" TEXT,
    "training_set_rows" INTEGER,
    "parent_version" TEXT,
    -- Base data summary, sample ids used, job id.
    "lineage" JSONB NOT NULL DEFAULT '{}',
    -- Accuracy overall and per category, confusion matrix, on the frozen evaluation set.
    "metrics" JSONB,
    "releasable" BOOLEAN,
    "gate_reason" TEXT,
    -- job | upload | demo
    "source" TEXT NOT NULL,
    "registered_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "registered_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "model_versions_pkey" PRIMARY KEY ("version")
);
CREATE INDEX "model_versions_backbone_idx" ON "model_versions" ("backbone_id");
CREATE INDEX "model_versions_category_set_idx" ON "model_versions" ("category_set", "registered_at" DESC);
