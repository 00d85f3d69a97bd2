-- A labelled sample whose stored embedding a training worker found to disagree with the
-- thumbnail the operator labelled (re-embedded with the backbone): the cosine distance
-- found. Such a sample is never trained on again, nor used in the registry's evaluation.
ALTER TABLE "samples" ADD COLUMN "embedding_mismatch" REAL;
