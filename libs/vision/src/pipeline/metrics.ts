import { argmax } from '../head/train';

export interface ClassMetrics {
  label: string;
  support: number;
  precision: number;
  recall: number;
}

export interface EvaluationMetrics {
  images: number;
  accuracy: number;
  topK: number;
  topKAccuracy: number;
  perClass: ClassMetrics[];
  /** matrix[true][predicted] counts. */
  confusion: number[][];
}

/** Accuracy, top-k accuracy, per-class precision/recall and confusion matrix from probabilities. */
export function computeMetrics(labels: string[], probs: ArrayLike<number>[], truth: number[], topK: number): EvaluationMetrics {
  const n = labels.length;
  const confusion = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  let correct = 0;
  let topKCorrect = 0;
  probs.forEach((p, i) => {
    const t = truth[i] as number;
    const pred = argmax(p);
    (confusion[t] as number[])[pred]++;
    if (pred === t) correct++;
    const better = Array.from(p).filter((v) => v > (p[t] as number)).length;
    if (better < topK) topKCorrect++;
  });
  const perClass = labels.map((label, c) => {
    const tp = (confusion[c] as number[])[c] as number;
    const support = (confusion[c] as number[]).reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + (row[c] as number), 0);
    return { label, support, precision: predicted ? tp / predicted : 0, recall: support ? tp / support : 0 };
  });
  const images = probs.length;
  return {
    images,
    accuracy: images ? correct / images : 0,
    topK,
    topKAccuracy: images ? topKCorrect / images : 0,
    perClass,
    confusion,
  };
}
