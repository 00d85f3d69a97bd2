import { judgeVersion, mcnemarOneSidedP, type CategoryRows, type GateSettings } from './model-gate';

/** Rows of one category: `both` right by both, `worse` right by the reference only, `better` by the candidate only, `neither` by none. */
function paired(category: string, counts: { both?: number; worse?: number; better?: number; neither?: number }): CategoryRows {
  const candidate: boolean[] = [];
  const reference: boolean[] = [];
  const add = (k: number, r: boolean, c: boolean) => {
    for (let i = 0; i < k; i++) {
      reference.push(r);
      candidate.push(c);
    }
  };
  add(counts.both ?? 0, true, true);
  add(counts.worse ?? 0, true, false);
  add(counts.better ?? 0, false, true);
  add(counts.neither ?? 0, false, false);
  return { category, candidate, reference };
}

describe(mcnemarOneSidedP.name, () => {
  it('is the exact upper binomial tail at 1/2 (known values)', () => {
    expect(mcnemarOneSidedP(5, 0)).toBeCloseTo(1 / 32, 12);
    expect(mcnemarOneSidedP(10, 2)).toBeCloseTo(79 / 4096, 12); // C(12,10)+C(12,11)+C(12,12) = 79
    expect(mcnemarOneSidedP(8, 2)).toBeCloseTo(56 / 1024, 12); // 45+10+1
    expect(mcnemarOneSidedP(3, 3)).toBeCloseTo(42 / 64, 12); // a tie: 20+15+6+1
    expect(mcnemarOneSidedP(1, 0)).toBe(0.5);
  });

  it('is 1 without discordant pairs or without pairs against the candidate', () => {
    expect(mcnemarOneSidedP(0, 0)).toBe(1);
    expect(mcnemarOneSidedP(0, 7)).toBe(1);
  });

  it('stays accurate where 2^-n underflows (n = 2000)', () => {
    expect(mcnemarOneSidedP(1000, 1000)).toBeCloseTo(0.5 + 0.5 * 0.017839, 4); // 1/2 + P(X = n/2)/2
    const p = mcnemarOneSidedP(1100, 900);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1e-5);
  });

  it('refuses counts that are not non-negative integers', () => {
    expect(() => mcnemarOneSidedP(-1, 2)).toThrow(RangeError);
    expect(() => mcnemarOneSidedP(1.5, 2)).toThrow(RangeError);
  });
});

describe(judgeVersion.name, () => {
  const settings: GateSettings = { alpha: 0.05, maxCategoryDrop: 0.1, maxOverallDrop: 0.05, minEvalRows: 20 };

  it('passes a version equal to its reference, naming the shared categories and overall', () => {
    const sut = judgeVersion({ reference: 'v1', categories: [paired('apples', { both: 30, neither: 5 }), paired('milk', { both: 25 })] }, settings);
    expect(sut.releasable).toBe(true);
    expect(sut.reason).toBe('no regression against v1 on 2 shared categories (overall 0.92→0.92, n=60, p=1.000)');
    expect(sut.categories.map((c) => [c.category, c.status, c.p])).toEqual([['apples', 'passed', 1], ['milk', 'passed', 1]]);
  });

  it('refuses a significantly worse category, naming it with before, after, n and p, even when the average improves', () => {
    // Milk: 35 right before, 23 after: 12 rows lost, none gained. Apples gains 20.
    const sut = judgeVersion({ reference: 'v1', categories: [paired('Apples', { both: 40, better: 20, neither: 0 }), paired('Milk', { both: 23, worse: 12, neither: 3 })] }, settings);
    expect(sut.releasable).toBe(false);
    expect(sut.overridable).toBe(false);
    expect(sut.regressed).toEqual(['Milk']);
    expect(sut.reason).toBe('not releasable: regresses against v1: Milk 0.92→0.61 (n=38, p<0.001)');
    const milk = sut.categories.find((c) => c.category === 'Milk');
    expect(milk).toMatchObject({ n: 38, worse: 12, better: 0, status: 'regressed' });
    expect(milk?.p).toBeCloseTo(1 / 4096, 12);
  });

  it('does not refuse a small drop that chance explains (ties and few discordant pairs), within the margin', () => {
    // 100 rows, 4 lost and 2 gained: -0.02, p = 0.34.
    const sut = judgeVersion({ reference: 'v1', categories: [paired('apples', { both: 90, worse: 4, better: 2, neither: 4 })] }, settings);
    expect(sut.releasable).toBe(true);
    expect(sut.categories[0]?.p).toBeCloseTo(22 / 64, 12);
  });

  it('refuses a drop beyond the practical margin even when not significant, once the category has enough rows', () => {
    // 20 rows, 4 lost and 1 gained: -0.15 (> 0.1), p = 0.1875.
    const sut = judgeVersion({ reference: 'v1', categories: [paired('juice', { both: 15, worse: 4, better: 1 })] }, settings);
    expect(sut.categories[0]?.p).toBeCloseTo(6 / 32, 12);
    expect(sut.releasable).toBe(false);
    expect(sut.reason).toContain('juice 0.95→0.80 (n=20, p=0.188)');
  });

  it('leaves a collapse on too few rows unverified — not releasable, but overridable — instead of passing it', () => {
    // 3 rows of yoghurt all lost: p = 0.125, not significant; n < 20.
    const sut = judgeVersion({ reference: 'v1', categories: [paired('apples', { both: 30 }), paired('yoghurt', { worse: 3 })] }, settings);
    expect(sut.releasable).toBe(false);
    expect(sut.overridable).toBe(true);
    expect(sut.unverified).toEqual(['yoghurt']);
    expect(sut.reason).toBe(
      "not releasable: unverified (fewer than 20 evaluation rows; releasable only by an operator's override with a written reason): yoghurt 1.00→0.00 (n=3, p=0.125)",
    );
  });

  it('calls a significant collapse on few rows a regression (not overridable)', () => {
    const sut = judgeVersion({ reference: 'v1', categories: [paired('apples', { both: 30 }), paired('yoghurt', { worse: 10 })] }, settings);
    expect(sut.regressed).toEqual(['yoghurt']);
    expect(sut.overridable).toBe(false);
  });

  it('a category without rows is unverified, not a silent 0 → 0', () => {
    const sut = judgeVersion({ reference: 'v1', categories: [paired('apples', { both: 30 }), { category: 'cream', candidate: [], reference: [] }] }, settings);
    expect(sut.unverified).toEqual(['cream']);
    expect(sut.releasable).toBe(false);
  });

  it('new categories (absent from the reference) must meet the minimum on their own; shared ones stay protected', () => {
    const newOk = judgeVersion({ reference: 'v1', categories: [paired('apples', { both: 30 }), { category: 'kefir', candidate: Array.from({ length: 25 }, (_, i) => i < 20) }] }, settings);
    expect(newOk.releasable).toBe(true);
    expect(newOk.reason).toBe('no regression against v1 on 1 shared categories (overall 1.00→1.00, n=30, p=1.000); new: kefir 0.80 (n=25)');
    const newThin = judgeVersion({ reference: 'v1', categories: [paired('apples', { both: 30 }), { category: 'kefir', candidate: [true, true] }] }, settings);
    expect(newThin.unverified).toEqual(['kefir']);
    expect(newThin.releasable).toBe(false);
    const damaged = judgeVersion({ reference: 'v1', categories: [paired('apples', { both: 10, worse: 20 }), { category: 'kefir', candidate: Array(30).fill(true) }] }, settings);
    expect(damaged.regressed).toEqual(['(overall)', 'apples']);
    expect(damaged.reason).toMatch(/^not releasable: regresses against v1: overall 1\.00→0\.33 \(n=30, p<0\.001\); apples 1\.00→0\.33 \(n=30, p<0\.001\)$/);
  });

  it('a first version (no reference) must beat the no-knowledge floor and have the minimum rows per category', () => {
    const good = judgeVersion({ categories: [{ category: 'a', candidate: Array(20).fill(true) }, { category: 'b', candidate: Array(20).fill(false) }], floor: 0.4 }, settings);
    expect(good.releasable).toBe(true);
    expect(good.reason).toBe('first version of its backbone: accuracy 0.50 beats the no-knowledge baseline 0.40 (n=40); every category has at least 20 evaluation rows');
    const bad = judgeVersion({ categories: [{ category: 'a', candidate: Array(20).fill(false) }, { category: 'b', candidate: Array(20).fill(true) }], floor: 0.5 }, settings);
    expect(bad.releasable).toBe(false);
    expect(bad.overridable).toBe(false);
    expect(bad.reason).toMatch(/does not beat the no-knowledge baseline 0\.50/);
  });

  it('refuses rows that are not paired (different counts)', () => {
    expect(() => judgeVersion({ reference: 'v1', categories: [{ category: 'a', candidate: [true], reference: [true, false] }] }, settings)).toThrow(/same rows/);
  });
});
