import sharp from 'sharp';
import { confusionMatrixSvg, lineChartSvg } from '@shelfsight/common';
import type { EvalRecord } from '../head/train';

/** Loss and accuracy per evaluation as a PNG line chart (accuracy on the left axis, loss on the right). */
export async function plotTrainingLog(history: EvalRecord[], title: string): Promise<Buffer> {
  const maxStep = Math.max(1, ...history.map((h) => h.step));
  const losses = history.flatMap((h) => [h.trainLoss, h.valLoss ?? NaN]).filter((v) => Number.isFinite(v));
  const maxLoss = Math.max(0.1, ...losses);
  const points = (f: (h: EvalRecord) => number | undefined) =>
    history.filter((h) => Number.isFinite(f(h))).map((h) => [h.step, f(h) as number] as [number, number]);
  const fifths = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const svg = lineChartSvg({
    title,
    width: 800,
    height: 420,
    margin: { top: 40, right: 60, bottom: 50, left: 60 },
    x: { min: 0, max: maxStep, ticks: [0, 0.25, 0.5, 0.75, 1].map((f) => ({ at: f * maxStep, label: String(Math.round(f * maxStep)) })), label: `step (max ${maxStep})` },
    left: { max: 1, ticks: fifths, format: (v) => `${(v * 100).toFixed(0)}%` },
    right: { max: maxLoss, ticks: fifths.map((f) => f * maxLoss), format: (v) => v.toFixed(2) },
    series: [
      { name: 'train accuracy', points: points((h) => h.trainAccuracy), color: '#1f77b4' },
      { name: 'validation accuracy', points: points((h) => h.valAccuracy), color: '#2ca02c' },
      { name: 'train loss', points: points((h) => h.trainLoss), axis: 'right', color: '#d62728', dash: '6,4' },
      { name: 'validation loss', points: points((h) => h.valLoss), axis: 'right', color: '#ff7f0e', dash: '6,4' },
    ],
    legend: 'bottom',
  });
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Confusion matrix (rows: true class, columns: predicted) as a PNG heat map. */
export async function plotConfusionMatrix(labels: string[], matrix: number[][], title: string): Promise<Buffer> {
  return sharp(Buffer.from(confusionMatrixSvg(labels, matrix, title))).png().toBuffer();
}
