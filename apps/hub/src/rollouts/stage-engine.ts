import { createHash } from 'node:crypto';
import type { ModelCommand, OnHalt, RolloutShadowGate } from '@shelfsight/contracts';
import { predictedChangeBreach, type PredictedChange } from './predicted-change';
import { DEVICE_ROLLOUT_STATES, type RolloutStage, type StageCounts, type DeviceRolloutState } from './rollout.dto';

/** Device states that count as a failure of the version on that device. */
export const FAILED_STATES: readonly DeviceRolloutState[] = ['rejected', 'rolled_back'];
/** States a device reports once it is done with an offer. */
export const REPORTED_STATES: readonly DeviceRolloutState[] = ['active', 'rejected', 'rolled_back'];
/** States of a device that holds the offer as a candidate (a cancel applies). */
export const CANDIDATE_STATES: readonly DeviceRolloutState[] = ['offered', 'downloading', 'verified', 'shadowing'];

export function emptyCounts(): StageCounts {
  return Object.fromEntries(DEVICE_ROLLOUT_STATES.map((s) => [s, 0])) as StageCounts;
}

/** Where a running rollout is: its stages, the current one, when it started, and counts per stage. */
export interface StageSnapshot {
  stages: readonly RolloutStage[];
  currentStage: number;
  /** When the current stage started. */
  stageStartedAt: Date;
  /** Device counts by state, per stage index. */
  counts: readonly StageCounts[];
  /** The rollout's shadow gate (`false`: turned off; absent: none to judge). */
  shadowGate?: RolloutShadowGate | false;
  /** The predicted inventory change pooled over the shadow runs of every device offered so far. */
  predicted?: PredictedChange;
}

export type StageDecision =
  | { kind: 'wait'; why: string }
  | { kind: 'promote'; to: number }
  | { kind: 'complete' }
  | { kind: 'halt'; reason: string };

function total(c: StageCounts): number {
  return DEVICE_ROLLOUT_STATES.reduce((n, s) => n + c[s], 0);
}

function sum(c: StageCounts, states: readonly DeviceRolloutState[]): number {
  return states.reduce((n, s) => n + c[s], 0);
}

/**
 * The stage engine's one rule, without side effects (the service applies it):
 * - halt when, over every device offered so far (stages up to the current one), failures
 *   (rejected, including the device's shadow gate, or rolled back) exceed the current stage's
 *   `abort.maxFailurePercent` of the devices that reported, once `abort.minDevices` reported;
 * - halt when the predicted inventory change over every device offered so far (their shadow
 *   runs pooled) is above the shadow gate's `maxPairChange` for a pair or `maxPredictedChange`
 *   overall: a canary that activated a head which would flip a category stops the rollout there;
 * - else promote (or complete, after the last stage) once the stage soaked `minSoakSeconds`
 *   and at least `successThreshold` of its own devices are active;
 * - else wait.
 */
export function decideStage(s: StageSnapshot, now: Date): StageDecision {
  const stage = s.stages[s.currentStage];
  if (!stage) return { kind: 'complete' };
  const offered = emptyCounts();
  for (let i = 0; i <= s.currentStage; i++) {
    const c = s.counts[i] ?? emptyCounts();
    for (const k of DEVICE_ROLLOUT_STATES) offered[k] += c[k];
  }
  const reported = sum(offered, REPORTED_STATES);
  const failed = sum(offered, FAILED_STATES);
  if (reported >= stage.abort.minDevices && reported > 0 && (failed / reported) * 100 > stage.abort.maxFailurePercent) {
    const why = failureBreakdown(offered);
    return {
      kind: 'halt',
      reason: `stage ${s.currentStage + 1} of ${s.stages.length}: ${failed} of ${reported} reporting devices failed (${why}), above the ${stage.abort.maxFailurePercent}% allowed`,
    };
  }
  const breach = s.shadowGate !== undefined && s.predicted ? predictedChangeBreach(s.shadowGate, s.predicted) : undefined;
  if (breach) return { kind: 'halt', reason: `stage ${s.currentStage + 1} of ${s.stages.length}: ${breach}` };
  const own = s.counts[s.currentStage] ?? emptyCounts();
  const devices = total(own);
  const share = devices === 0 ? 1 : own.active / devices;
  const soaked = (now.getTime() - s.stageStartedAt.getTime()) / 1000;
  if (soaked < stage.minSoakSeconds) return { kind: 'wait', why: `soaking: ${Math.floor(soaked)} of ${stage.minSoakSeconds} s` };
  if (share < stage.successThreshold) return { kind: 'wait', why: `${own.active} of ${devices} active, ${stage.successThreshold * 100}% needed` };
  return s.currentStage + 1 < s.stages.length ? { kind: 'promote', to: s.currentStage + 1 } : { kind: 'complete' };
}

/** Why a rollout stops: halted by the stage engine, aborted or rolled back by the operator. */
export type StopAction = 'halt' | 'abort' | 'rollback';

/**
 * The command a device of a stopped rollout gets, by the state it reported: a candidate
 * (downloading, verified, shadowing) is cancelled; a device active on the version is rolled
 * back on the operator's rollback, and on a halt when the policy says `onHalt: rollback`
 * (an abort, or a halt with `hold`, leaves it); anything else gets nothing.
 */
export function stopCommand(action: StopAction, onHalt: OnHalt, state: DeviceRolloutState): ModelCommand['command'] | undefined {
  if (CANDIDATE_STATES.includes(state)) return 'cancel';
  if (state !== 'active') return undefined;
  return action === 'rollback' || (action === 'halt' && onHalt === 'rollback') ? 'rollback' : undefined;
}

function failureBreakdown(c: StageCounts): string {
  return FAILED_STATES.filter((k) => c[k] > 0)
    .map((k) => `${c[k]} ${k}`)
    .join(', ');
}

/** A device's stable position in a rollout: the first 48 bits of sha256(rollout id, device id), in [0, 1). */
export function rankOf(rolloutId: string, deviceId: string): number {
  const h = createHash('sha256').update(`${rolloutId}\u0000${deviceId}`).digest();
  return h.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * Which devices a rollout takes and the stage of each: the selection ordered by
 * {@link rankOf}, cut to `percent` of it (if given), then split into the cumulative stage
 * percentages (at least one device in the first stage when there is any). Deterministic:
 * the same rollout id and devices always give the same stages.
 */
export function assignStages(rolloutId: string, deviceIds: readonly string[], stagePercents: readonly number[], percent = 100): Array<{ deviceId: string; stage: number }> {
  const ordered = [...new Set(deviceIds)]
    .map((deviceId) => ({ deviceId, rank: rankOf(rolloutId, deviceId) }))
    .sort((a, b) => a.rank - b.rank || (a.deviceId < b.deviceId ? -1 : 1));
  const taken = ordered.slice(0, Math.ceil((ordered.length * percent) / 100));
  const n = taken.length;
  const out: Array<{ deviceId: string; stage: number }> = [];
  let from = 0;
  stagePercents.forEach((p, stage) => {
    const upTo = stage === stagePercents.length - 1 ? n : Math.min(n, Math.max(stage === 0 && n > 0 ? 1 : 0, Math.ceil((n * p) / 100)));
    for (let i = from; i < upTo; i++) out.push({ deviceId: taken[i]!.deviceId, stage });
    from = Math.max(from, upTo);
  });
  return out;
}
