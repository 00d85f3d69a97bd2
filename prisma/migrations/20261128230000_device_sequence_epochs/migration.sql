-- Sequence numbers are unique per (device, epoch): a device whose storage was wiped
-- starts a new epoch at seq 1, and its detections must not be taken for repeats.
-- Rows stored before epochs existed keep epoch ''.
ALTER TABLE "detections" ADD COLUMN "epoch" TEXT NOT NULL DEFAULT '';

DROP INDEX "detections_device_seq_key";

CREATE UNIQUE INDEX "detections_device_epoch_seq_key" ON "detections"("device_id", "epoch", "seq");
