import { z } from 'zod';
import { DeviceIdSchema, RolloutPolicyInputSchema, type HealthStats, type OnHalt, type RolloutPolicy, type ShadowStats } from '@shelfsight/contracts';
import type { PredictedChange } from './predicted-change';

/** Who gets the version: every device, devices of some sites, named devices; optionally a stable share of that selection. */
export const RolloutTargetSchema = z
  .object({
    all: z.literal(true).optional(),
    sites: z.array(z.string().min(1).max(128)).min(1).max(1000).optional(),
    deviceIds: z.array(DeviceIdSchema).min(1).max(100_000).optional(),
    percent: z.number().min(1).max(100).optional(),
  })
  .strict()
  .refine((t) => [t.all, t.sites, t.deviceIds].filter((x) => x !== undefined).length === 1, {
    message: 'name exactly one of all: true, sites or deviceIds',
  });
export type RolloutTarget = z.infer<typeof RolloutTargetSchema>;

export const RolloutStageSchema = z
  .object({
    /** Cumulative share of the target that has the version once this stage runs (the last stage: 100). */
    percent: z.number().min(0.01).max(100),
    minSoakSeconds: z.number().min(0).max(30 * 24 * 3600).default(0),
    /** Share of the stage's devices that must be active before the next stage starts. */
    successThreshold: z.number().min(0).max(1).default(1),
    abort: z
      .object({
        /** Halt when more than this percentage of the devices that reported (active, rejected, rolled back) failed. */
        maxFailurePercent: z.number().min(0).max(100),
        /** ... once at least this many devices reported. */
        minDevices: z.number().int().min(1).default(1),
      })
      .strict()
      .default({ maxFailurePercent: 0, minDevices: 1 }),
  })
  .strict();
export type RolloutStage = z.infer<typeof RolloutStageSchema>;

export const CreateRolloutSchema = z
  .object({
    modelVersion: z.string().min(1).max(128),
    target: RolloutTargetSchema,
    stages: z.array(RolloutStageSchema).min(1).max(20),
    /** Absent or partial: the defaults (a shadow gate, a health watch, roll back on a halt); see `resolveRolloutPolicy`. */
    policy: RolloutPolicyInputSchema.optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    r.stages.forEach((s, i) => {
      const prev = i > 0 ? r.stages[i - 1]!.percent : 0;
      if (s.percent <= prev) ctx.addIssue({ code: 'custom', path: ['stages', i, 'percent'], message: 'stage percentages are cumulative: each above the one before' });
    });
    if (r.stages[r.stages.length - 1]!.percent !== 100) ctx.addIssue({ code: 'custom', path: ['stages'], message: 'the last stage must reach 100 (percent of the target)' });
  });
export type CreateRollout = z.infer<typeof CreateRolloutSchema>;

export const ListRolloutsQuerySchema = z
  .object({
    state: z.enum(['running', 'paused', 'completed', 'halted', 'aborted', 'rolled_back']).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .strict();
export type ListRolloutsQuery = z.infer<typeof ListRolloutsQuerySchema>;

export const ROLLOUT_STATES = ['running', 'paused', 'completed', 'halted', 'aborted', 'rolled_back'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];
/** A rollout in one of these holds its devices (one such rollout per device). */
export const OPEN_ROLLOUT_STATES: readonly RolloutState[] = ['running', 'paused', 'halted'];

/** A device's state in a rollout: `pending` = its stage has not started (never offered); else what it last reported. */
export const DEVICE_ROLLOUT_STATES = ['pending', 'offered', 'downloading', 'verified', 'shadowing', 'active', 'rejected', 'rolled_back'] as const;
export type DeviceRolloutState = (typeof DEVICE_ROLLOUT_STATES)[number];

export type StageCounts = Record<DeviceRolloutState, number>;

export interface RolloutStageView extends RolloutStage {
  index: number;
  /** pending (not started), running, passed (promoted past), halted (the rollout stopped here: halted, aborted or rolled back). */
  state: 'pending' | 'running' | 'passed' | 'halted';
  startedAt: string | null;
  devices: number;
  counts: StageCounts;
  /** GET /rollouts/:id only: the predicted inventory change over this stage's devices' shadow runs. */
  predictedChange?: PredictedChange;
}

export interface RolloutDeviceView {
  deviceId: string;
  stage: number;
  state: DeviceRolloutState;
  reason: string | null;
  detail: string | null;
  activeVersion: string | null;
  previousVersion: string | null;
  shadow: ShadowStats | null;
  health: HealthStats | null;
  offeredAt: string | null;
  statusAt: string | null;
}

export interface RolloutView {
  id: string;
  modelVersion: string;
  state: RolloutState;
  haltReason: string | null;
  target: RolloutTarget;
  /** The policy as applied: every default filled in; `shadowGate`/`health` false only when turned off (see `overrideReason`). */
  policy: RolloutPolicy;
  /** What the halt did to the devices already active on the version (null: not halted by the stage engine). */
  haltAction: OnHalt | null;
  currentStage: number;
  stages: RolloutStageView[];
  /** Counts over every device of the rollout. */
  counts: StageCounts;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** GET /rollouts/:id only: the predicted inventory change over every offered device's shadow run (what gates the current stage). */
  predictedChange?: PredictedChange;
  /** GET /rollouts/:id only. */
  devices?: RolloutDeviceView[];
}
