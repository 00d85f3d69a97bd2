-- The evaluation set frozen for each category set (per backbone: embeddings of another
-- backbone are other numbers): the first version registered for a set with training rows
-- freezes the held-out rows of its training set (split validation or testing); every
-- later version of that set and backbone is scored on exactly those rows. The rows
-- (embeddings, labels, row ids) are a training-rows blob in the hub's blob store.
CREATE TABLE "evaluation_sets" (
    "category_set" TEXT NOT NULL,
    -- Category names, sorted (the set's canonical order; the blob's labels).
    "labels" JSONB NOT NULL,
    "backbone_id" TEXT NOT NULL,
    "embedding_dim" INTEGER NOT NULL,
    "blob_sha256" TEXT NOT NULL,
    "rows" INTEGER NOT NULL,
    -- Rows per category.
    "counts" JSONB NOT NULL,
    -- The version whose training set the rows came from.
    "frozen_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "evaluation_sets_pkey" PRIMARY KEY ("category_set", "backbone_id")
);

-- Backlog re-scoring after a registration: pending samples of the version's backbone are
-- scored again with it, in the background.
ALTER TABLE "model_versions" ADD COLUMN "rescore_state" TEXT;
ALTER TABLE "model_versions" ADD COLUMN "rescored_samples" INTEGER;
ALTER TABLE "model_versions" ADD COLUMN "rescored_at" TIMESTAMPTZ(3);
