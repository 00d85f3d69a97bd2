import { z } from 'zod';
import type { ModelMetrics } from './evaluation';
import type { GateJudgement, GateSettings } from './model-gate';
import type { GateOverride } from './models.repository';

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

/** Body of POST /models/:version/override: why the operator releases a version the gate left unverified. */
export const GateOverrideSchema = z.object({
  reason: z.string().trim().min(10, 'a written reason of at least 10 characters').max(2000),
});
export type GateOverrideBody = z.infer<typeof GateOverrideSchema>;

/** Query of POST /models/evaluation-rows (the body is a training-rows.bin). */
export const EvaluationRowsQuerySchema = z.object({ backbone: z.string().min(1).max(200) });
export type EvaluationRowsQuery = z.infer<typeof EvaluationRowsQuerySchema>;

export interface EvaluationRowsDto {
  id: string;
  backbone: string;
  dim: number;
  rows: number;
  counts: Record<string, number>;
  frozenBy: string;
}

/** The gate's record of a version: its judgement, the settings it used, and a refusal for rows it trained on. */
export type GateRecordDto = GateJudgement & { settings: GateSettings; holdoutPercent: number; trainedOnRows?: number };

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
  /** An operator's release of a version the gate left unverified, with the written reason; null when none. */
  override: GateOverride | null;
  registeredAt: string;
}

export interface ModelVersionDto extends ModelVersionSummaryDto {
  artifact: { sha256: string; bytes: number };
  trainingSet: { sha256: string; rows: number } | null;
  lineage: ModelLineage;
  metrics: ModelMetrics | null;
  /** The gate's judgement: reference, per-category rows, before, after, discordant pairs, McNemar p and status. */
  gate: GateRecordDto | null;
  /** An upload's own metrics and splits: informational, never used by the gate. */
  declared: Record<string, unknown> | null;
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
