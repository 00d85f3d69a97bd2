import { resolveRolloutPolicy, type ShadowStats } from '@shelfsight/contracts';
import { predictedChange } from './predicted-change';
import { DEVICE_ROLLOUT_STATES, RolloutStageSchema, type RolloutStage, type StageCounts } from './rollout.dto';
import { assignStages, decideStage, emptyCounts, rankOf, stopCommand, type StageSnapshot } from './stage-engine';

const stage = (over: Partial<RolloutStage> & { percent: number }): RolloutStage => RolloutStageSchema.parse(over);
const counts = (c: Partial<StageCounts>): StageCounts => ({ ...emptyCounts(), ...c });

describe(decideStage.name, () => {
  const t0 = new Date('2026-12-01T02:00:00Z');
  const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
  const canaryThenAll = [
    stage({ percent: 10, minSoakSeconds: 60, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } }),
    stage({ percent: 100, minSoakSeconds: 0, successThreshold: 0.9, abort: { maxFailurePercent: 20, minDevices: 5 } }),
  ];
  const snapshot = (over: Partial<StageSnapshot>): StageSnapshot => ({ stages: canaryThenAll, currentStage: 0, stageStartedAt: t0, counts: [emptyCounts(), emptyCounts()], ...over });

  it('waits out the soak time even when every device of the stage is active', () => {
    const sut = snapshot({ counts: [counts({ active: 2 }), counts({ pending: 18 })] });

    expect(decideStage(sut, at(59))).toEqual({ kind: 'wait', why: 'soaking: 59 of 60 s' });
    expect(decideStage(sut, at(60))).toEqual({ kind: 'promote', to: 1 });
  });

  it('waits until the success share of the stage\u2019s own devices is reached', () => {
    const sut = snapshot({ counts: [counts({ active: 1, shadowing: 1 }), counts({ pending: 18 })] });

    expect(decideStage(sut, at(3600)).kind).toBe('wait');
  });

  it('completes after the last stage once its success threshold is met', () => {
    const sut = snapshot({ currentStage: 1, counts: [counts({ active: 2 }), counts({ active: 17, downloading: 1 })] });

    expect(decideStage(sut, at(1))).toEqual({ kind: 'complete' });
  });

  it('halts the canary on one failure when no failure is allowed, naming the counts', () => {
    const sut = snapshot({ counts: [counts({ active: 1, rejected: 1 }), counts({ pending: 18 })] });

    const d = decideStage(sut, at(0));

    expect(d).toEqual({ kind: 'halt', reason: 'stage 1 of 2: 1 of 2 reporting devices failed (1 rejected), above the 0% allowed' });
  });

  it('does not halt before minDevices reported, then halts above maxFailurePercent over every offered device', () => {
    const early = snapshot({ currentStage: 1, counts: [counts({ active: 2 }), counts({ rolled_back: 2, downloading: 16 })] });
    expect(decideStage(early, at(0)).kind).toBe('wait'); // 4 reported < 5

    const later = snapshot({ currentStage: 1, counts: [counts({ active: 2 }), counts({ active: 1, rolled_back: 1, rejected: 1, downloading: 15 })] });
    // 5 reported, 2 failed = 40% > 20%
    expect(decideStage(later, at(0))).toMatchObject({ kind: 'halt' });

    const tolerable = snapshot({ currentStage: 1, counts: [counts({ active: 2 }), counts({ active: 7, rejected: 1, downloading: 10 })] });
    // 10 reported, 1 failed = 10% <= 20%
    expect(decideStage(tolerable, at(0)).kind).toBe('wait');
  });

  it('promotes a stage without devices once soaked (nothing to wait for)', () => {
    const sut = snapshot({ counts: [emptyCounts(), counts({ pending: 3 })] });

    expect(decideStage(sut, at(60))).toEqual({ kind: 'promote', to: 1 });
  });

  describe('with the default shadow gate (a rollout created without a policy)', () => {
    const gate = resolveRolloutPolicy(undefined).shadowGate;
    /** One canary's shadow run: 100 frames, `milk` of them milk, `flipped` of those yogurt for the candidate. */
    const run = (milk: number, flipped: number): ShadowStats => ({
      frames: 100,
      agreement: (100 - flipped) / 100,
      activeMeanConfidence: 0.8,
      candidateMeanConfidence: 0.8,
      histogram: { active: new Array<number>(10).fill(0), candidate: new Array<number>(10).fill(0) },
      categories: { milk: { active: milk, candidate: milk - flipped }, bread: { active: 100 - milk, candidate: 100 - milk }, ...(flipped ? { yogurt: { active: 0, candidate: flipped } } : {}) },
      changes: flipped ? [{ from: 'milk', to: 'yogurt', frames: flipped }] : [],
    });
    // The canary activated (its own gate passed) and soaked: without the predicted change it would be promoted.
    const activeCanary = (reports: ShadowStats[]) => snapshot({ counts: [counts({ active: 1 }), counts({ pending: 18 })], shadowGate: gate, predicted: predictedChange(reports) });

    it('has a gate with hub limits by default', () => {
      expect(gate).toMatchObject({ maxPredictedChange: expect.any(Number), maxPairChange: expect.any(Number) });
    });

    it('halts the canary stage when its shadow run would flip one category, naming the pair', () => {
      const d = decideStage(activeCanary([run(20, 20)]), at(60));

      expect(d).toEqual({ kind: 'halt', reason: 'stage 1 of 2: predicted inventory change milk → yogurt 20.0% of 100 frames (20) is above maxPairChange 10.0%' });
    });

    it('promotes when the predicted change is within the limits, or the gate was turned off', () => {
      expect(decideStage(activeCanary([run(20, 3)]), at(60))).toEqual({ kind: 'promote', to: 1 });
      expect(decideStage({ ...activeCanary([run(20, 20)]), shadowGate: false }, at(60))).toEqual({ kind: 'promote', to: 1 });
    });

    it('judges the shadow runs pooled over every stage offered so far', () => {
      const later = { ...activeCanary([run(20, 2), run(20, 2), run(30, 30)]), currentStage: 1, counts: [counts({ active: 1 }), counts({ active: 2, pending: 16 })] };
      // 34 of 300 frames milk → yogurt: 11.3% > 10%.
      expect(decideStage(later, at(0))).toMatchObject({ kind: 'halt', reason: expect.stringMatching(/^stage 2 of 2: predicted inventory change milk → yogurt 11\.3% of 300 frames \(34\)/) });
    });

    it('halts on failures first: the failure counts are the older rule', () => {
      const d = decideStage({ ...activeCanary([run(20, 20)]), counts: [counts({ rejected: 1 }), counts({ pending: 18 })] }, at(60));
      expect(d).toMatchObject({ kind: 'halt', reason: expect.stringContaining('1 rejected') });
    });
  });
});

describe(stopCommand.name, () => {
  it('on a halt, rolls back the devices active on the version by default (onHalt: rollback), and holds them with onHalt: hold', () => {
    expect(resolveRolloutPolicy(undefined).onHalt).toBe('rollback');
    expect(stopCommand('halt', 'rollback', 'active')).toBe('rollback');
    expect(stopCommand('halt', 'hold', 'active')).toBeUndefined();
  });

  it('cancels candidates whatever the action; an abort leaves active devices; the operator’s rollback rolls them back', () => {
    for (const action of ['halt', 'abort', 'rollback'] as const) {
      for (const state of ['offered', 'downloading', 'verified', 'shadowing'] as const) expect(stopCommand(action, 'hold', state)).toBe('cancel');
    }
    expect(stopCommand('abort', 'rollback', 'active')).toBeUndefined();
    expect(stopCommand('rollback', 'hold', 'active')).toBe('rollback');
  });

  it('sends nothing to devices that never got the offer or are done with it', () => {
    for (const state of DEVICE_ROLLOUT_STATES.filter((s) => ['pending', 'rejected', 'rolled_back'].includes(s))) {
      expect(stopCommand('halt', 'rollback', state)).toBeUndefined();
      expect(stopCommand('rollback', 'rollback', state)).toBeUndefined();
    }
  });
});

describe(assignStages.name, () => {
  const devices = Array.from({ length: 200 }, (_, i) => `dev-${i}`);

  it('splits the target into cumulative stage shares, at least one device in the canary', () => {
    const sut = assignStages('ro_1', devices, [5, 25, 100]);

    const perStage = [0, 1, 2].map((s) => sut.filter((d) => d.stage === s).length);
    expect(perStage).toEqual([10, 40, 150]);
    expect(assignStages('ro_1', ['only'], [1, 100])).toEqual([{ deviceId: 'only', stage: 0 }]);
  });

  it('is stable: the same rollout id picks the same devices, ordered by their rank', () => {
    const a = assignStages('ro_x', devices, [10, 100], 50);
    const b = assignStages('ro_x', [...devices].reverse(), [10, 100], 50);

    expect(b).toEqual(a);
    expect(a).toHaveLength(100);
    const canary = a.filter((d) => d.stage === 0).map((d) => rankOf('ro_x', d.deviceId));
    const rest = a.filter((d) => d.stage === 1).map((d) => rankOf('ro_x', d.deviceId));
    expect(Math.max(...canary)).toBeLessThan(Math.min(...rest));
  });

  it('another rollout id picks another canary', () => {
    const canaryOf = (id: string) => assignStages(id, devices, [5, 100]).filter((d) => d.stage === 0).map((d) => d.deviceId);

    expect(canaryOf('ro_a')).not.toEqual(canaryOf('ro_b'));
  });
});
