import { z } from 'zod';
import type { ModelMetrics } from './evaluation';

export const MODEL_SOURCES = ['job', 'upload', 'demo'] as const;
export type ModelSource = (typeof MODEL_SOURCES)[number];

export const ListModelsQuerySchema = z.object({
  backbone: z.string().min(1).optional(),
  categorySet: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type ListModelsQuery = z.infer<typeof ListModelsQuerySchema>;

export const CompareModelsQuerySchema = z.object({ a: z.string().min(1), b: z.string().min(1) });
export type CompareModelsQuery = z.infer<typeof CompareModelsQuerySchema>;

/** Query of POST /models (the body is the artifact archive). */
export const RegisterModelQuerySchema = z.object({
  parent: z.string().min(1).max(128).optional(),
});
export type RegisterModelQuery = z.infer<typeof RegisterModelQuerySchema>;

export interface ModelLineage {
  parent: string | null;
  /** What the base data was: dataset folder, image and row counts, split (from the manifest or the job). */
  base: Record<string, unknown>;
  /** Ids of the labelled samples the version was trained on. */
  sampleIds: string[];
  jobId?: string;
}

export interface ModelVersionSummaryDto {
  version: string;
  backbone: { id: string; checksum: string };
  labels: string[];
  categorySet: string;
  headType: string;
  source: string;
  accuracy: number | null;
  releasable: boolean | null;
  gateReason: string | null;
  registeredAt: string;
}

export interface ModelVersionDto extends ModelVersionSummaryDto {
  artifact: { sha256: string; bytes: number };
  trainingSet: { sha256: string; rows: number } | null;
  lineage: ModelLineage;
  metrics: ModelMetrics | null;
  registeredBy: string | null;
  createdAt: string;
  /** The backlog re-score: state (queued, running, done, superseded, failed), samples scored, failed attempts and the last error, the next retry. */
  rescore: { state: string | null; samples: number | null; finishedAt: string | null; attempts: number; error: string | null; retryAt: string | null };
}

export interface CategoryDeltaDto {
  category: string;
  rows: number;
  a: number;
  b: number;
  delta: number;
}

export interface ModelComparisonDto {
  a: string;
  b: string;
  categorySet: string;
  evaluationRows: number;
  overall: { a: number; b: number; delta: number };
  perCategory: CategoryDeltaDto[];
}
