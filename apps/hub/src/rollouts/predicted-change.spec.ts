import type { ShadowStats } from '@shelfsight/contracts';
import { predictedChange, predictedChangeBreach } from './predicted-change';

/** A shadow report of `frames` frames: `active` frames per category, and the frames that changed per pair. */
function report(active: Record<string, number>, changes?: Array<[string, string, number]>): ShadowStats {
  const frames = Object.values(active).reduce((a, b) => a + b, 0);
  const changed = (changes ?? []).reduce((n, [, , f]) => n + f, 0);
  return {
    frames,
    agreement: frames === 0 ? 0 : (frames - changed) / frames,
    activeMeanConfidence: 0.8,
    candidateMeanConfidence: 0.8,
    histogram: { active: new Array<number>(10).fill(0), candidate: new Array<number>(10).fill(0) },
    categories: Object.fromEntries(Object.entries(active).map(([c, n]) => [c, { active: n, candidate: n }])),
    ...(changes ? { changes: changes.map(([from, to, f]) => ({ from, to, frames: f })) } : {}),
  };
}

describe(predictedChange.name, () => {
  it('pools the devices\u2019 shadow runs into the share of frames that would change, per pair, largest first', () => {
    const sut = predictedChange([
      report({ milk: 20, bread: 80 }, [['milk', 'yogurt', 20], ['bread', 'milk', 2]]),
      report({ milk: 40, bread: 60 }, [['milk', 'yogurt', 30]]),
    ]);
    expect(sut).toMatchObject({ devices: 2, frames: 200, changed: 52, share: 0.26, unpaired: 0 });
    expect(sut.pairs).toEqual([
      { from: 'milk', to: 'yogurt', frames: 50, share: 0.25, ofFrom: 50 / 60 },
      { from: 'bread', to: 'milk', frames: 2, share: 0.01, ofFrom: 2 / 140 },
    ]);
  });

  it('counts the changed frames of a report without pairs from its agreement, as unpaired', () => {
    const old = { ...report({ milk: 10 }), agreement: 0.7 };
    const sut = predictedChange([old, report({ milk: 10 }, [['milk', 'juice', 1]])]);
    expect(sut).toMatchObject({ devices: 2, frames: 20, changed: 4, unpaired: 3, share: 0.2 });
    expect(sut.pairs).toEqual([{ from: 'milk', to: 'juice', frames: 1, share: 0.05, ofFrom: 0.05 }]);
  });

  it('is empty, not NaN, without shadowed frames', () => {
    expect(predictedChange([])).toEqual({ devices: 0, frames: 0, changed: 0, share: 0, pairs: [], unpaired: 0 });
    expect(predictedChange([report({})]).devices).toBe(0);
  });
});

describe(predictedChangeBreach.name, () => {
  const gate = { maxPredictedChange: 0.25, maxPairChange: 0.1 };

  it('names the pair above maxPairChange', () => {
    const change = predictedChange([report({ milk: 30, bread: 70 }, [['milk', 'yogurt', 12]])]);
    expect(predictedChangeBreach(gate, change)).toBe('predicted inventory change milk → yogurt 12.0% of 100 frames (12) is above maxPairChange 10.0%');
  });

  it('halts on the overall share when no single pair is above its limit', () => {
    const change = predictedChange([report({ a: 25, b: 25, c: 25, d: 25 }, [['a', 'b', 9], ['b', 'c', 9], ['c', 'd', 9]])]);
    expect(predictedChangeBreach(gate, change)).toMatch(/^predicted inventory change 27\.0% of 100 frames \(27\) is above maxPredictedChange 25\.0%; largest: a → b 9\.0%/);
  });

  it('passes within the limits, without frames, and with the gate off', () => {
    const change = predictedChange([report({ milk: 50, bread: 50 }, [['milk', 'yogurt', 10]])]);
    expect(predictedChangeBreach(gate, change)).toBeUndefined();
    expect(predictedChangeBreach(gate, predictedChange([]))).toBeUndefined();
    expect(predictedChangeBreach(false, predictedChange([report({ milk: 10 }, [['milk', 'yogurt', 10]])]))).toBeUndefined();
    // A legacy gate without hub limits judges nothing here.
    expect(predictedChangeBreach({ maxCategoryShift: 0.1 }, predictedChange([report({ milk: 10 }, [['milk', 'yogurt', 10]])]))).toBeUndefined();
  });
});
