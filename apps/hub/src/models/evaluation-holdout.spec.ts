import { isEvaluationSample } from './evaluation-holdout';

describe(isEvaluationSample.name, () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => BigInt(i + 1));

  it('holds out about the share asked for, the same samples every time, whatever the id type', () => {
    const held = ids.filter((id) => isEvaluationSample(id, 20));
    expect(held.length).toBeGreaterThan(1850);
    expect(held.length).toBeLessThan(2150);
    expect(ids.filter((id) => isEvaluationSample(id, 20))).toEqual(held);
    expect(held.every((id) => isEvaluationSample(String(id), 20) && isEvaluationSample(Number(id), 20))).toBe(true);
  });

  it('only adds samples when the share grows', () => {
    const at10 = ids.filter((id) => isEvaluationSample(id, 10));
    expect(at10.every((id) => isEvaluationSample(id, 20))).toBe(true);
    expect(at10.length).toBeLessThan(ids.filter((id) => isEvaluationSample(id, 20)).length);
  });

  it('holds out none at 0% and all at 100%', () => {
    expect(ids.some((id) => isEvaluationSample(id, 0))).toBe(false);
    expect(ids.every((id) => isEvaluationSample(id, 100))).toBe(true);
  });
});
