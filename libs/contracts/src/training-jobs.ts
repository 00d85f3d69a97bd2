import { z } from 'zod';

/**
 * The REST contract of retraining jobs (`POST /training-jobs`, `GET /training-jobs/:id`),
 * shared by the hub, its worker and the `shelf jobs` commands.
 */
export const HEAD_TYPES = ['softmax', 'mlp'] as const;

export const TrainingHeadOptionsSchema = z
  .object({
    type: z.enum(HEAD_TYPES).default('softmax'),
    hidden: z.number().int().min(1).max(8192).optional(),
    epochs: z.number().min(0.1).max(1000).optional(),
    learningRate: z.number().positive().max(10).optional(),
    batchSize: z.number().int().min(1).max(100000).optional(),
    dropout: z.number().min(0).max(0.95).optional(),
    weightDecay: z.number().min(0).optional(),
    labelSmoothing: z.number().min(0).max(0.5).optional(),
    seed: z.number().int().optional(),
  })
  .strict();
export type TrainingHeadOptions = z.infer<typeof TrainingHeadOptionsSchema>;

/**
 * Distorted views of the labelled samples' thumbnails (`augmentFromThumbnails`): how many
 * per sample and which distortions (the fields of `shelf train`'s --random-* options;
 * unset fields take the `accurate` preset's distortions).
 */
export const ThumbnailAugmentationSchema = z
  .object({
    views: z.number().int().min(1).max(32).default(4),
    flipLeftRight: z.boolean().optional(),
    crop: z.number().min(0).max(100).optional(),
    scale: z.number().min(0).max(100).optional(),
    brightness: z.number().min(0).max(100).optional(),
    blur: z.number().min(0).max(20).optional(),
    noise: z.number().min(0).max(128).optional(),
    rotate: z.number().min(0).max(45).optional(),
  })
  .strict();
export type ThumbnailAugmentation = z.infer<typeof ThumbnailAugmentationSchema>;

export const TrainingJobRequestSchema = z
  .object({
    /** A dataset (class folders or CSV `image,label`) on the hub machine, or a registered version whose training rows are the base. */
    base: z.union([z.object({ dataset: z.string().min(1) }).strict(), z.object({ version: z.string().min(1) }).strict()]),
    /** Train from every labelled sample's stored embedding too (default), or from the base only. */
    samples: z.enum(['all labelled', 'none']).default('all labelled'),
    /** Backbone spec the worker resolves (folder, built-in, catalogue name); default: the base version's, else TRAINING_BACKBONE. */
    backbone: z.string().min(1).optional(),
    head: TrainingHeadOptionsSchema.default({ type: 'softmax' }),
    /**
     * Also train on distorted views of the labelled training samples' stored thumbnails
     * (decoded and run through the backbone in the worker): true for 4 views with the
     * default distortions, or the views and distortions to use.
     */
    augmentFromThumbnails: z.union([z.boolean(), ThumbnailAugmentationSchema]).default(false),
  })
  .strict();
export type TrainingJobRequest = z.infer<typeof TrainingJobRequestSchema>;

export const TRAINING_JOB_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type TrainingJobStatus = (typeof TRAINING_JOB_STATUSES)[number];
export const TRAINING_JOB_PHASES = ['queued', 'bottlenecks', 'augmenting', 'training', 'evaluating', 'registering', 'done'] as const;
export type TrainingJobPhase = (typeof TRAINING_JOB_PHASES)[number];

export const TrainingJobProgressSchema = z.object({
  rows: z.number().optional(),
  baseRows: z.number().optional(),
  sampleRows: z.number().optional(),
  /** Rows from distorted views of sample thumbnails, and thumbnails skipped (missing or undecodable), while augmenting. */
  augmentedRows: z.number().optional(),
  augmentDone: z.number().optional(),
  augmentTotal: z.number().optional(),
  skippedThumbnails: z.number().optional(),
  /** Labelled samples re-embedded from their thumbnails so far, of how many (the check of devices' embeddings). */
  embeddingCheckDone: z.number().optional(),
  embeddingCheckTotal: z.number().optional(),
  step: z.number().optional(),
  steps: z.number().optional(),
  epoch: z.number().optional(),
  epochs: z.number().optional(),
  valAccuracy: z.number().optional(),
});
export type TrainingJobProgress = z.infer<typeof TrainingJobProgressSchema>;

export const TrainingJobViewSchema = z.object({
  id: z.number(),
  rootId: z.number(),
  attempt: z.number(),
  retryOf: z.number().nullable(),
  status: z.enum(TRAINING_JOB_STATUSES),
  phase: z.enum(TRAINING_JOB_PHASES),
  progress: TrainingJobProgressSchema,
  error: z.string().nullable(),
  spec: z.unknown(),
  workerId: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  heartbeatAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  cancelRequestedAt: z.string().nullable(),
  cancelledBy: z.string().nullable(),
  resultVersion: z.string().nullable(),
  result: z.record(z.string(), z.unknown()).nullable(),
});
export type TrainingJobView = z.infer<typeof TrainingJobViewSchema>;

/** Why a job failed when its worker disappeared (killed, restarted, heartbeat lost). */
export const TRAINING_JOB_INTERRUPTED = 'interrupted';
