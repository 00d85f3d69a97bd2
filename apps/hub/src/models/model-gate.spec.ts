import type { ModelMetrics } from './evaluation';
import { ModelGate } from './model-gate';

function metrics(perCategory: Record<string, number>, baseline = { majority: 0.5, chance: 0.5 }): ModelMetrics {
  const labels = Object.keys(perCategory).sort();
  const accuracy = labels.reduce((s, l) => s + (perCategory[l] as number), 0) / labels.length;
  return {
    categorySet: 'set',
    frozenBy: 'v0',
    rows: labels.length * 10,
    accuracy,
    perCategory: Object.fromEntries(labels.map((l) => [l, { accuracy: perCategory[l] as number, rows: 10 }])),
    labels,
    confusion: labels.map(() => labels.map(() => 0)),
    baseline,
  };
}

describe(ModelGate.name, () => {
  const sut = new ModelGate({ maxOverallDrop: 0.02, maxCategoryDrop: 0.05 });
  const best = { version: 'v1', metrics: metrics({ apples: 0.9, milk: 0.82 }) };

  it('passes an equal version and one within tolerance', () => {
    expect(sut.judge(metrics({ apples: 0.9, milk: 0.82 }), best).releasable).toBe(true);
    expect(sut.judge(metrics({ apples: 0.88, milk: 0.8 }), best)).toEqual({
      releasable: true,
      reason: 'no regression against v1: overall 0.86 -> 0.84 (-0.02); no category dropped more than 0.05',
    });
  });

  it('refuses a single category collapse behind a better average and names it', () => {
    expect(sut.judge(metrics({ apples: 1, milk: 0.74 }), best)).toEqual({
      releasable: false,
      reason: 'regresses against v1: category milk: 0.82 -> 0.74 (-0.08, tolerance 0.05)',
    });
  });

  it('refuses an overall drop beyond tolerance', () => {
    expect(sut.judge(metrics({ apples: 0.86, milk: 0.78 }), best).reason).toBe('regresses against v1: overall: 0.86 -> 0.82 (-0.04, tolerance 0.02)');
  });

  it('passes a first version only above the no-knowledge baseline, and never an unevaluated one', () => {
    expect(sut.judge(metrics({ apples: 0.7, milk: 0.6 }, { majority: 0.6, chance: 0.5 }), undefined).releasable).toBe(true);
    expect(sut.judge(metrics({ apples: 0.6, milk: 0.6 }, { majority: 0.6, chance: 0.5 }), undefined)).toEqual({
      releasable: false,
      reason: 'first version of its category set: accuracy 0.60 does not beat the no-knowledge baseline 0.60',
    });
    expect(sut.judge(undefined, best).releasable).toBe(false);
  });
});
