-- Sites, zones and locations, created on first sight.
CREATE TABLE "sites" (
    "id" TEXT NOT NULL,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "sites_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "zones" (
    "site" TEXT NOT NULL,
    "code" TEXT NOT NULL,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "zones_pkey" PRIMARY KEY ("site", "code")
);

CREATE TABLE "locations" (
    "site" TEXT NOT NULL,
    "code" TEXT NOT NULL,
    "zone" TEXT NOT NULL,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_observed_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "locations_pkey" PRIMARY KEY ("site", "code")
);
CREATE INDEX "locations_site_zone_idx" ON "locations"("site", "zone");

-- Backfill from what the first migration's tables already hold.
INSERT INTO "sites" ("id") SELECT DISTINCT "site" FROM "detections" ON CONFLICT DO NOTHING;
INSERT INTO "zones" ("site", "code") SELECT DISTINCT "site", "zone" FROM "detections" ON CONFLICT DO NOTHING;
INSERT INTO "locations" ("site", "code", "zone", "last_observed_at")
  SELECT "site", "location", min("zone"), max("captured_at") FROM "detections" GROUP BY "site", "location" ON CONFLICT DO NOTHING;

-- Inventory history as hourly deltas of location counts per category: a location whose
-- state moves from X to Y at capture hour H adds -1 to (X, H) and +1 to (Y, H). Counts at
-- any hour are the running sum, so history never needs the raw detections (and survives
-- their retention).
CREATE TABLE "inventory_deltas" (
    "site" TEXT NOT NULL,
    "zone" TEXT NOT NULL,
    "category" TEXT NOT NULL,
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "delta" INTEGER NOT NULL,
    CONSTRAINT "inventory_deltas_pkey" PRIMARY KEY ("site", "zone", "category", "hour")
);
CREATE INDEX "inventory_deltas_hour_idx" ON "inventory_deltas"("hour");

INSERT INTO "inventory_deltas" ("site", "zone", "category", "hour", "delta")
  SELECT "site", "zone", "category", date_trunc('hour', "captured_at"), count(*)::int
  FROM "location_state" GROUP BY 1, 2, 3, 4 ON CONFLICT DO NOTHING;

-- Query support.
CREATE INDEX "location_state_site_zone_category_idx" ON "location_state"("site", "zone", "category");
CREATE INDEX "detections_site_received_idx" ON "detections"("site", "id" DESC);
CREATE INDEX "detections_received_idx" ON "detections"("received_at");
