-- Frame requests the hub sent to devices: after an operator's correction (the reply
-- becomes a labelled sample) or for a disagreement between devices (the reply is queued
-- with reason `disagreement`). The reply's requestId finds the purpose here.
-- status: requested | received (sample_id set) | not_held (the device no longer had it).
CREATE TABLE "frame_requests" (
    "request_id" TEXT NOT NULL,
    "device_id" TEXT NOT NULL,
    "frame_id" TEXT NOT NULL,
    -- correction | disagreement
    "purpose" TEXT NOT NULL,
    "detection_id" BIGINT,
    "status" TEXT NOT NULL DEFAULT 'requested',
    "sample_id" BIGINT,
    "requested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "answered_at" TIMESTAMPTZ(3),

    CONSTRAINT "frame_requests_pkey" PRIMARY KEY ("request_id")
);
CREATE INDEX "frame_requests_detection_idx" ON "frame_requests" ("detection_id");

-- The purge deletes a thumbnail blob only when no sample refers to it any more.
CREATE INDEX "samples_thumbnail_idx" ON "samples" ("thumbnail_sha256");
-- Similar-samples index catch-up: new samples of one backbone since the last id loaded.
CREATE INDEX "samples_backbone_id_idx" ON "samples" ("backbone_id", "id") WHERE "embedding" IS NOT NULL;
