-- Time columns of the append-only detections table follow insertion order closely:
-- BRIN indexes serve range scans (retention by arrival, capture-time filters) at a
-- fraction of a B-tree's write cost, which matters at fleet ingest rates.
DROP INDEX IF EXISTS "detections_captured_idx";
DROP INDEX IF EXISTS "detections_received_idx";
CREATE INDEX "detections_captured_brin" ON "detections" USING BRIN ("captured_at");
CREATE INDEX "detections_received_brin" ON "detections" USING BRIN ("received_at");
