-- The sequence epoch each device named in its last birth, and when it last changed
-- (the device's storage was reset).
ALTER TABLE "devices" ADD COLUMN "epoch" TEXT;
ALTER TABLE "devices" ADD COLUMN "epoch_changed_at" TIMESTAMPTZ(3);
