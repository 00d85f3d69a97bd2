-- The learning loop's inputs: samples the fleet uploads (low confidence, small margin,
-- audit, requested after a correction, disagreement), the category catalogue and the
-- operators' corrections of detections.
--
-- A sample's thumbnail lives in the hub's content-addressed blob store (DATA_DIR/blobs,
-- by sha256); its bottleneck vector (float32 little-endian) lives here, so retraining
-- and similarity never decode an image or run a backbone on the hub.
CREATE TABLE "samples" (
    "id" BIGSERIAL NOT NULL,
    "device_id" TEXT NOT NULL,
    "sample_id" TEXT NOT NULL,
    -- low_confidence | small_margin | audit | requested | disagreement
    "reason" TEXT NOT NULL,
    "request_id" TEXT,
    "frame_id" TEXT NOT NULL,
    "detection_id" BIGINT,
    "site" TEXT NOT NULL,
    "zone" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "captured_at" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- What the device predicted when it sent the sample.
    "predicted_category" TEXT NOT NULL,
    "predicted_confidence" REAL NOT NULL,
    "predicted_top_k" JSONB NOT NULL,
    "model_version" TEXT NOT NULL,
    "backbone_id" TEXT NOT NULL,
    -- Bottleneck vector: embedding_dim float32 values, little-endian.
    "embedding" BYTEA,
    "embedding_dim" INTEGER,
    "thumbnail_sha256" TEXT NOT NULL,
    "thumbnail_bytes" INTEGER NOT NULL,
    "thumbnail_width" INTEGER NOT NULL,
    "thumbnail_height" INTEGER NOT NULL,
    -- The newest model's view of the sample (re-scored from the embedding when a version
    -- is registered); initially the device's prediction. Queue orders use these.
    "scored_category" TEXT NOT NULL,
    "scored_confidence" REAL NOT NULL,
    "scored_margin" REAL NOT NULL,
    "scored_entropy" REAL NOT NULL,
    "scored_top_k" JSONB NOT NULL,
    "scored_model_version" TEXT NOT NULL,
    -- Higher first in the queue (disagreement ahead of plain low confidence).
    "priority" INTEGER NOT NULL DEFAULT 0,
    -- pending | labelled | skipped
    "state" TEXT NOT NULL DEFAULT 'pending',
    "label" TEXT,
    "labelled_by" TEXT,
    "labelled_at" TIMESTAMPTZ(3),
    -- Unlabelled samples are deleted after this; labelled ones are kept (NULL).
    "expires_at" TIMESTAMPTZ(3),

    CONSTRAINT "samples_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "samples_device_sample_key" ON "samples" ("device_id", "sample_id");
CREATE INDEX "samples_state_priority_margin_idx" ON "samples" ("state", "priority" DESC, "scored_margin", "id");
CREATE INDEX "samples_state_received_idx" ON "samples" ("state", "received_at" DESC, "id" DESC);
CREATE INDEX "samples_label_idx" ON "samples" ("label") WHERE "state" = 'labelled';
CREATE INDEX "samples_expires_idx" ON "samples" ("expires_at") WHERE "expires_at" IS NOT NULL;
CREATE INDEX "samples_device_received_idx" ON "samples" ("device_id", "received_at");
CREATE INDEX "samples_frame_idx" ON "samples" ("device_id", "frame_id");

-- The product categories the hub knows. Labels must name an active category; a retired
-- one keeps its history but takes no new labels.
CREATE TABLE "categories" (
    "name" TEXT NOT NULL,
    "display_name" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retired_at" TIMESTAMPTZ(3),

    CONSTRAINT "categories_pkey" PRIMARY KEY ("name")
);

-- An operator's correction of one detection. frame_status: requested (the device was
-- asked for the frame), received (it became labelled sample sample_id), not_held (the
-- device no longer had it: a label-only correction).
CREATE TABLE "corrections" (
    "id" BIGSERIAL NOT NULL,
    "detection_id" BIGINT NOT NULL,
    "device_id" TEXT NOT NULL,
    "frame_id" TEXT NOT NULL,
    "previous_category" TEXT NOT NULL,
    "category" TEXT NOT NULL,
    "corrected_by" TEXT NOT NULL,
    "corrected_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "moved_state" BOOLEAN NOT NULL,
    "request_id" TEXT NOT NULL,
    "frame_status" TEXT NOT NULL DEFAULT 'requested',
    "sample_id" BIGINT,

    CONSTRAINT "corrections_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "corrections_request_key" ON "corrections" ("request_id");
CREATE INDEX "corrections_detection_idx" ON "corrections" ("detection_id");

-- Detections an operator marked misclassified, and detections in dispute (devices
-- reported different categories for one location within DISAGREEMENT_WINDOW_S).
ALTER TABLE "detections" ADD COLUMN "misclassified" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "detections" ADD COLUMN "disputed_at" TIMESTAMPTZ(3);
