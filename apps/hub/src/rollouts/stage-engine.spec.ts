import { RolloutStageSchema, type RolloutStage, type StageCounts } from './rollout.dto';
import { assignStages, decideStage, emptyCounts, rankOf, type StageSnapshot } from './stage-engine';

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
