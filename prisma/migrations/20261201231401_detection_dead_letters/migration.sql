-- Detections PostgreSQL refused for good (SQLSTATE class 22 data exception or 23 integrity
-- violation): kept here for an operator, acknowledged to the device so it stops resending,
-- counted by shelfsight_detections_dead_lettered_total{sqlstate}. The payload is the
-- detection as the device sent it, as JSON text (text always stores: JSON escapes NUL).
CREATE TABLE "detection_dead_letters" (
    "id" BIGSERIAL NOT NULL,
    "device_id" TEXT NOT NULL,
    "epoch" TEXT NOT NULL,
    "seq" BIGINT NOT NULL,
    "sqlstate" TEXT NOT NULL,
    "error" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "detection_dead_letters_pkey" PRIMARY KEY ("id")
);
-- A resend after a crash between dead-lettering and the ack adds nothing.
CREATE UNIQUE INDEX "detection_dead_letters_key" ON "detection_dead_letters" ("device_id", "epoch", "seq");
CREATE INDEX "detection_dead_letters_at_idx" ON "detection_dead_letters" ("at");
