-- CreateTable
CREATE TABLE "devices" (
    "id" TEXT NOT NULL,
    "kind" TEXT NOT NULL DEFAULT 'unknown',
    "site" TEXT,
    "agent_version" TEXT,
    "backbone_id" TEXT,
    "model_version" TEXT,
    "online" BOOLEAN NOT NULL DEFAULT false,
    "last_seen_at" TIMESTAMPTZ(3),
    "last_birth_at" TIMESTAMPTZ(3),
    "last_heartbeat" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "devices_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "detections" (
    "id" BIGSERIAL NOT NULL,
    "device_id" TEXT NOT NULL,
    "seq" BIGINT NOT NULL,
    "frame_id" TEXT NOT NULL,
    "site" TEXT NOT NULL,
    "zone" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "captured_at" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "category" TEXT NOT NULL,
    "confidence" REAL NOT NULL,
    "top_k" JSONB NOT NULL,
    "model_version" TEXT NOT NULL,
    "latency_ms" REAL NOT NULL,

    CONSTRAINT "detections_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "location_state" (
    "site" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "zone" TEXT NOT NULL,
    "category" TEXT NOT NULL,
    "confidence" REAL NOT NULL,
    "captured_at" TIMESTAMPTZ(3) NOT NULL,
    "device_id" TEXT NOT NULL,
    "seq" BIGINT NOT NULL,
    "detection_id" BIGINT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "location_state_pkey" PRIMARY KEY ("site","location")
);

-- CreateIndex
CREATE UNIQUE INDEX "detections_device_seq_key" ON "detections"("device_id", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "detections_device_frame_key" ON "detections"("device_id", "frame_id");

-- CreateIndex
CREATE INDEX "detections_site_location_captured_idx" ON "detections"("site", "location", "captured_at" DESC);

-- CreateIndex
CREATE INDEX "detections_captured_idx" ON "detections"("captured_at");

-- CreateIndex
CREATE INDEX "location_state_site_category_idx" ON "location_state"("site", "category");
