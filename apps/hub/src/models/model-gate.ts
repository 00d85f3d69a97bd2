/** How the release gate decides (hub settings GATE_*). */
export interface GateSettings {
  /** One-sided significance of the paired (McNemar) test: a category whose p is below it regresses. */
  alpha: number;
  /** Practical margin: a category with at least `minEvalRows` rows whose accuracy drops by more than this regresses, significant or not (0..1). */
  maxCategoryDrop: number;
  /** The same margin for all shared rows together (0..1). */
  maxOverallDrop: number;
  /** Fewer evaluation rows than this leave a category unverified: not releasable without an operator's override. */
  minEvalRows: number;
}

/**
 * One category's evaluation rows, row by row: whether the candidate classified each
 * correctly and, when the reference version knows the category, whether the reference
 * did — on exactly the same rows, in the same order (the pairing the test needs).
 */
export interface CategoryRows {
  category: string;
  candidate: ArrayLike<boolean | number>;
  /** Absent for a category the reference does not have (new with the candidate). */
  reference?: ArrayLike<boolean | number>;
}

export type CategoryStatus = 'passed' | 'regressed' | 'unverified' | 'new';

export interface CategoryJudgement {
  category: string;
  /** Evaluation rows of the category. */
  n: number;
  /** The reference's accuracy on them; null for a new category (or without a reference). */
  before: number | null;
  after: number;
  /** Discordant pairs: rows the reference got right and the candidate wrong, and the reverse. */
  worse: number;
  better: number;
  /** One-sided exact McNemar p that the candidate is worse; null without a reference. */
  p: number | null;
  status: CategoryStatus;
}

export interface PairedTotals {
  n: number;
  before: number;
  after: number;
  worse: number;
  better: number;
  p: number;
}

export interface GateJudgement {
  releasable: boolean;
  reason: string;
  /** The version compared with, or null (the first version of its backbone). */
  reference: string | null;
  categories: CategoryJudgement[];
  /** All rows of the verified shared categories together; null without a reference or such rows. */
  overall: PairedTotals | null;
  regressed: string[];
  unverified: string[];
  /** True when the only obstacle is unverified categories: an operator may release it with a written reason. */
  overridable: boolean;
}

/** Differences are judged at 1e-9 so an equal version is never refused for rounding. */
const EPS = 1e-9;

/**
 * Exact one-sided McNemar test: the probability, if candidate and reference were equally
 * good, of at least `worse` of the `worse + better` discordant pairs going against the
 * candidate — the upper tail of Binomial(worse + better, 1/2). 1 with no discordant pairs.
 * Summed in log space, so large counts do not underflow.
 */
export function mcnemarOneSidedP(worse: number, better: number): number {
  if (!Number.isInteger(worse) || !Number.isInteger(better) || worse < 0 || better < 0) throw new RangeError(`discordant counts must be non-negative integers (got ${worse}, ${better})`);
  const n = worse + better;
  if (n === 0 || worse === 0) return 1;
  // log C(n, k) for k = worse..n, from log C(n, worse) upwards.
  let logC = 0;
  for (let i = 1; i <= worse; i++) logC += Math.log(n - worse + i) - Math.log(i);
  const terms: number[] = [];
  for (let k = worse; k <= n; k++) {
    terms.push(logC - n * Math.LN2);
    logC += Math.log(n - k) - Math.log(k + 1);
  }
  const max = Math.max(...terms);
  const p = Math.exp(max) * terms.reduce((s, t) => s + Math.exp(t - max), 0);
  return Math.min(1, p);
}

const f2 = (v: number) => v.toFixed(2);
const fp = (p: number) => (p < 0.001 ? 'p<0.001' : `p=${p.toFixed(3)}`);

/** "Milk 0.92→0.61 (n=38, p=0.003)" */
export function describeCategory(c: CategoryJudgement): string {
  return c.before === null ? `${c.category} ${f2(c.after)} (n=${c.n})` : `${c.category} ${f2(c.before)}→${f2(c.after)} (n=${c.n}, ${fp(c.p ?? 1)})`;
}

function count(xs: ArrayLike<boolean | number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) if (xs[i]) s++;
  return s;
}

/**
 * The registry's release gate, pure. The candidate is compared with one reference version
 * (its parent, or the version the fleet runs) on the categories they share, row by row on
 * the same evaluation rows: a category regresses when the candidate is significantly worse
 * (exact one-sided McNemar test on the discordant pairs, p < alpha) or, with at least
 * `minEvalRows` rows, when its accuracy drops by more than the practical margin. A category
 * with fewer than `minEvalRows` rows — shared or new — is unverified: its collapse could go
 * unseen, so the version is not releasable unless an operator overrides. New categories
 * (absent from the reference) need the minimum on their own. Without a reference (the first
 * version of its backbone), the candidate must beat what a head that knows nothing would
 * score (`floor`). The reason names each category with before, after, n and p.
 */
export function judgeVersion(
  input: { reference?: string; categories: CategoryRows[]; floor?: number },
  settings: GateSettings,
): GateJudgement {
  const categories: CategoryJudgement[] = [];
  let total = { n: 0, before: 0, after: 0, worse: 0, better: 0 };
  let allRows = 0;
  let allCorrect = 0;
  for (const c of [...input.categories].sort((a, b) => a.category.localeCompare(b.category))) {
    const n = c.candidate.length;
    const after = n > 0 ? count(c.candidate) / n : 0;
    allRows += n;
    allCorrect += count(c.candidate);
    const enough = n >= settings.minEvalRows;
    if (!input.reference || !c.reference) {
      const status: CategoryStatus = !enough ? 'unverified' : input.reference ? 'new' : 'passed';
      categories.push({ category: c.category, n, before: null, after, worse: 0, better: 0, p: null, status });
      continue;
    }
    if (c.reference.length !== n) throw new Error(`category ${c.category}: the reference was scored on ${c.reference.length} rows, the candidate on ${n} (the test needs the same rows)`);
    let worse = 0;
    let better = 0;
    for (let i = 0; i < n; i++) {
      const r = Boolean(c.reference[i]);
      const k = Boolean(c.candidate[i]);
      if (r && !k) worse++;
      else if (!r && k) better++;
    }
    const before = n > 0 ? count(c.reference) / n : 0;
    const p = mcnemarOneSidedP(worse, better);
    const significant = p < settings.alpha;
    const beyondMargin = enough && before - after > settings.maxCategoryDrop + EPS;
    const status: CategoryStatus = significant || beyondMargin ? 'regressed' : enough ? 'passed' : 'unverified';
    categories.push({ category: c.category, n, before, after, worse, better, p, status });
    // Overall is judged on the verified shared categories (an unverified one has its own verdict).
    if (enough) total = { n: total.n + n, before: total.before + count(c.reference), after: total.after + count(c.candidate), worse: total.worse + worse, better: total.better + better };
  }
  const overall: PairedTotals | null =
    input.reference && total.n > 0
      ? { n: total.n, before: total.before / total.n, after: total.after / total.n, worse: total.worse, better: total.better, p: mcnemarOneSidedP(total.worse, total.better) }
      : null;
  const regressed = categories.filter((c) => c.status === 'regressed');
  const unverified = categories.filter((c) => c.status === 'unverified');
  const problems: string[] = [];
  const overallRegressed =
    overall !== null && (overall.p < settings.alpha || (overall.n >= settings.minEvalRows && overall.before - overall.after > settings.maxOverallDrop + EPS));
  if (overallRegressed) problems.push(`overall ${f2(overall.before)}→${f2(overall.after)} (n=${overall.n}, ${fp(overall.p)})`);
  problems.push(...regressed.map(describeCategory));
  const floorMissed = !input.reference && input.floor !== undefined && !(allRows > 0 && allCorrect / allRows > input.floor + EPS);
  const parts: string[] = [];
  if (problems.length > 0) parts.push(`regresses against ${input.reference}: ${problems.join('; ')}`);
  if (floorMissed) parts.push(`first version of its backbone: accuracy ${f2(allRows > 0 ? allCorrect / allRows : 0)} does not beat the no-knowledge baseline ${f2(input.floor as number)}`);
  if (unverified.length > 0) {
    parts.push(
      `unverified (fewer than ${settings.minEvalRows} evaluation rows; releasable only by an operator's override with a written reason): ${unverified.map(describeCategory).join('; ')}`,
    );
  }
  const blocked = problems.length > 0 || floorMissed;
  const releasable = !blocked && unverified.length === 0;
  const fresh = categories.filter((c) => c.status === 'new');
  const reason = releasable
    ? input.reference
      ? `no regression against ${input.reference} on ${categories.length - fresh.length} shared categories${overall ? ` (overall ${f2(overall.before)}→${f2(overall.after)}, n=${overall.n}, ${fp(overall.p)})` : ''}${fresh.length > 0 ? `; new: ${fresh.map(describeCategory).join('; ')}` : ''}`
      : `first version of its backbone: accuracy ${f2(allRows > 0 ? allCorrect / allRows : 0)} beats the no-knowledge baseline ${f2(input.floor ?? 0)} (n=${allRows}); every category has at least ${settings.minEvalRows} evaluation rows`
    : `not releasable: ${parts.join('. ')}`;
  return {
    releasable,
    reason,
    reference: input.reference ?? null,
    categories,
    overall,
    regressed: [...(overallRegressed ? ['(overall)'] : []), ...regressed.map((c) => c.category)],
    unverified: unverified.map((c) => c.category),
    overridable: !blocked && unverified.length > 0,
  };
}
