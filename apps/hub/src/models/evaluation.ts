import { createHash } from 'node:crypto';
import { predictPlain, type PlainHead, type TrainingRows } from '@shelfsight/contracts';

/** Accuracy of one version on the hub's evaluation rows of its categories (frozen base rows and held-out labelled samples). */
export interface ModelMetrics {
  /** The version's category set (sha256 of the sorted names). */
  categorySet: string;
  /** Who froze the base rows used (versions, `operator:<actor>`), comma-separated; `none` when only samples. */
  frozenBy: string;
  rows: number;
  accuracy: number;
  /** Per category: share of its rows classified as it (recall) and its row count. */
  perCategory: Record<string, { accuracy: number; rows: number }>;
  /** Sorted category names: the order of the confusion matrix. */
  labels: string[];
  /** confusion[true][predicted], counts of rows. */
  confusion: number[][];
  /** What a head that knows nothing would score: always the most frequent category, or a uniform guess. */
  baseline: { majority: number; chance: number };
  /** Frozen evaluation rows the version's own rows trained or validated on (then it is not releasable); absent when none. */
  trainedOnRows?: number;
  /** Of `rows`, how many were operator-labelled samples held out for evaluation (the rest: frozen base rows). */
  heldOutSamples?: number;
}

/** sha256 of the sorted category names: versions with the same set are comparable. */
export function categorySetOf(labels: string[]): string {
  return createHash('sha256').update([...labels].sort().join('\n')).digest('hex');
}

/** Score a head (labels in its output order) on evaluation rows whose labels are the set's sorted names. */
export function evaluateHead(head: PlainHead, headLabels: string[], rows: TrainingRows, set: { categorySet: string; frozenBy: string }, batch = 1024): ModelMetrics {
  const labels = rows.labels;
  const toSet = headLabels.map((l) => labels.indexOf(l));
  if (toSet.some((i) => i < 0)) throw new Error(`head labels ${headLabels.join(', ')} are not the evaluation set's ${labels.join(', ')}`);
  const k = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const n = rows.label.length;
  const dim = rows.dim;
  const out = headLabels.length;
  for (let start = 0; start < n; start += batch) {
    const m = Math.min(batch, n - start);
    const probs = predictPlain(head, rows.x.subarray(start * dim, (start + m) * dim), m);
    for (let r = 0; r < m; r++) {
      let best = 0;
      for (let o = 1; o < out; o++) if ((probs[r * out + o] as number) > (probs[r * out + best] as number)) best = o;
      const truth = rows.label[start + r] as number;
      const row = confusion[truth] as number[];
      const predicted = toSet[best] as number;
      row[predicted] = (row[predicted] as number) + 1;
    }
  }
  const perCategory: ModelMetrics['perCategory'] = {};
  let correct = 0;
  labels.forEach((name, i) => {
    const row = confusion[i] as number[];
    const total = row.reduce((a, b) => a + b, 0);
    correct += row[i] as number;
    perCategory[name] = { accuracy: total > 0 ? (row[i] as number) / total : 0, rows: total };
  });
  const counts = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  return {
    categorySet: set.categorySet,
    frozenBy: set.frozenBy,
    rows: n,
    accuracy: n > 0 ? correct / n : 0,
    perCategory,
    labels,
    confusion,
    baseline: { majority: n > 0 ? Math.max(...counts) / n : 0, chance: 1 / k },
  };
}

/** Whether the head's top answer for each row is the row's true category (by name). */
export function correctRows(head: PlainHead, headLabels: string[], rows: TrainingRows, batch = 1024): Uint8Array {
  const n = rows.label.length;
  const dim = rows.dim;
  const out = headLabels.length;
  const truthToHead = rows.labels.map((l) => headLabels.indexOf(l));
  const correct = new Uint8Array(n);
  for (let start = 0; start < n; start += batch) {
    const m = Math.min(batch, n - start);
    const probs = predictPlain(head, rows.x.subarray(start * dim, (start + m) * dim), m);
    for (let r = 0; r < m; r++) {
      let best = 0;
      for (let o = 1; o < out; o++) if ((probs[r * out + o] as number) > (probs[r * out + best] as number)) best = o;
      correct[start + r] = truthToHead[rows.label[start + r] as number] === best ? 1 : 0;
    }
  }
  return correct;
}

/** The rows whose true category is one of `labels`, with the sorted `labels` as their label list. */
export function rowsOfCategories(rows: TrainingRows, labels: string[]): TrainingRows {
  const sorted = [...labels].sort();
  const keep: number[] = [];
  const label: number[] = [];
  rows.label.forEach((l, i) => {
    const j = sorted.indexOf(rows.labels[l] as string);
    if (j >= 0) {
      keep.push(i);
      label.push(j);
    }
  });
  const x = new Float32Array(keep.length * rows.dim);
  keep.forEach((i, k) => x.set(rows.x.subarray(i * rows.dim, (i + 1) * rows.dim), k * rows.dim));
  return {
    dim: rows.dim,
    labels: sorted,
    label: Uint32Array.from(label),
    split: Uint8Array.from(keep.map((i) => rows.split[i] as number)),
    x,
    ...(rows.ids ? { ids: keep.map((i) => rows.ids![i] as string) } : {}),
  };
}

/**
 * Several sets of evaluation rows (of one embedding size) as one, over the union of their
 * labels; a row whose id another set already brought is left out (rows without a real id,
 * `row:<n>`, are all kept).
 */
export function poolRows(parts: TrainingRows[], dim: number): TrainingRows {
  const labels = [...new Set(parts.flatMap((p) => p.labels))].sort();
  const seen = new Set<string>();
  const label: number[] = [];
  const ids: string[] = [];
  const chunks: Float32Array[] = [];
  for (const p of parts) {
    if (p.dim !== dim) throw new Error(`evaluation rows of ${p.dim} dimensions cannot join rows of ${dim}`);
    p.label.forEach((l, i) => {
      const id = p.ids?.[i] ?? `row:${ids.length}`;
      if (!id.startsWith('row:')) {
        if (seen.has(id)) return;
        seen.add(id);
      }
      label.push(labels.indexOf(p.labels[l] as string));
      ids.push(id);
      chunks.push(p.x.subarray(i * dim, (i + 1) * dim));
    });
  }
  const x = new Float32Array(label.length * dim);
  chunks.forEach((c, i) => x.set(c, i * dim));
  return { dim, labels, label: Uint32Array.from(label), split: new Uint8Array(label.length).fill(2), x, ids };
}

export interface ScoredRow {
  category: string;
  confidence: number;
  /** Top-1 minus top-2 probability. */
  margin: number;
  /** Shannon entropy of the probabilities, in nats. */
  entropy: number;
  topK: Array<{ category: string; confidence: number }>;
}

/** A head's view of embeddings, as the labelling queue stores it (samples.scored_*). */
export function scoreRows(head: PlainHead, headLabels: string[], x: Float32Array, rows: number, topK = 3): ScoredRow[] {
  const probs = predictPlain(head, x, rows);
  const k = headLabels.length;
  const out: ScoredRow[] = [];
  for (let r = 0; r < rows; r++) {
    const p = Array.from(probs.subarray(r * k, (r + 1) * k));
    const order = p.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
    const entropy = -p.reduce((s, v) => (v > 0 ? s + v * Math.log(v) : s), 0);
    const [first, second] = order;
    out.push({
      category: headLabels[first![1]] as string,
      confidence: first![0],
      margin: first![0] - (second?.[0] ?? 0),
      entropy,
      topK: order.slice(0, topK).map(([v, i]) => ({ category: headLabels[i] as string, confidence: v })),
    });
  }
  return out;
}
