import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createProgress } from '@shelfsight/common';
import { assertSameBackbone, loadModel } from '../artifact/artifact';
import { computeBottlenecks, type BottleneckFailure } from '../bottlenecks';
import { loadDataset, splitDataset, type LabeledImage, type SplitName } from '../data/dataset';
import { ttaViews, type TtaMode } from '../data/views';
import { argmax } from '../head/train';
import { plotConfusionMatrix } from '../report/svg-charts';
import { openExtraction, type ExtractionOptions } from './context';
import { predictImages } from './infer';
import { tunedFeatures } from '../tail/tuned-features';
import { computeMetrics, type EvaluationMetrics } from './metrics';

export interface EvaluateModelOptions extends Omit<ExtractionOptions, 'backbone'> {
  model: string;
  data: string;
  /** Default: the backbone recorded in the model. */
  backbone?: string;
  /** Which part of `data` to score: `testing` by default when `data` is the training data (hash split), else `all`. */
  split?: SplitName | 'all';
  topK: number;
  /** Default: the model's own setting. */
  tta?: TtaMode;
  /** Where to write metrics.json, confusion.json/.png, misclassified.json (default `<model>/eval`). */
  out?: string;
}

export interface Misclassified {
  image: string;
  label: string;
  predicted: string;
  confidence: number;
}

export interface EvaluateModelResult {
  metrics: EvaluationMetrics;
  misclassified: Misclassified[];
  failed: BottleneckFailure[];
  split: SplitName | 'all';
  outDir: string;
  modelVersion: string;
}

/** Score a model on labelled images: accuracy, top-k, per-class precision/recall, confusion matrix, misclassified list. */
export async function evaluateModel(opts: EvaluateModelOptions): Promise<EvaluateModelResult> {
  const model = await loadModel(opts.model);
  const { manifest, labels } = model;
  try {
    const data = await loadDataset(opts.data);
    const trainedOn = manifest.training.data as string | undefined;
    const split = (manifest.training.split ?? {}) as { mode?: string; validationPercentage?: number; testingPercentage?: number };
    const sameData = trainedOn !== undefined && resolve(trainedOn) === resolve(data.source) && split.mode === 'hash';
    const which = opts.split ?? (sameData ? 'testing' : 'all');
    let images: LabeledImage[] = data.images;
    if (which !== 'all') images = splitDataset(data, split.validationPercentage ?? 10, split.testingPercentage ?? 10)[which];
    const labelIndex = new Map(labels.map((l, i) => [l, i]));
    const foreign = images.filter((i) => !labelIndex.has(i.label));
    images = images.filter((i) => labelIndex.has(i.label));

    const tta = opts.tta ?? ((manifest.training.tta as TtaMode | undefined) ?? 'none');
    const views = ttaViews(tta);
    const backbone = opts.backbone ?? manifest.backbone.source;
    let bn;
    if (model.tail) {
      bn = await tunedFeatures(model.tail, images.map((i) => ({ path: i.path, views })), { ...opts, backbone }, (b) => assertSameBackbone(manifest, b));
    } else {
      const ctx = await openExtraction({ ...opts, backbone }, images.length * views.length);
      try {
        assertSameBackbone(manifest, ctx.extractor.backbone);
        const progress = createProgress('eval bottlenecks', images.length * views.length);
        let shown = 0;
        bn = await computeBottlenecks(
          images.map((i) => ({ path: i.path, views })),
          ctx.extractor,
          ctx.cache,
          {
            logger: ctx.logger,
            onProgress: (d) => {
              if (d > shown) progress.tick(d - shown);
              shown = Math.max(shown, d);
            },
          },
        );
        progress.done();
      } finally {
        await ctx.close();
      }
    }
    const scored = images.filter((i) => bn.features.has(i.path));
    const probs = predictImages(
      model.head,
      scored.map((i) => [...(bn.features.get(i.path) as Map<string, Float32Array>).values()]),
    );
    const truth = scored.map((i) => labelIndex.get(i.label) as number);
    const metrics = computeMetrics(labels, probs, truth, opts.topK);
    const misclassified: Misclassified[] = [];
    probs.forEach((p, i) => {
      const pred = argmax(p);
      if (pred !== truth[i]) {
        const img = scored[i] as LabeledImage;
        misclassified.push({ image: img.path, label: img.label, predicted: labels[pred] as string, confidence: p[pred] as number });
      }
    });
    const outDir = opts.out ?? join(opts.model, 'eval');
    await mkdir(outDir, { recursive: true });
    const summary = {
      model: opts.model,
      modelVersion: manifest.version,
      data: data.source,
      split: which,
      tta,
      images: metrics.images,
      skipped: bn.failed.length,
      unknownLabels: foreign.length,
      accuracy: metrics.accuracy,
      topK: metrics.topK,
      topKAccuracy: metrics.topKAccuracy,
      perClass: metrics.perClass,
    };
    await writeFile(join(outDir, 'metrics.json'), JSON.stringify(summary, null, 2) + '\n');
    await writeFile(join(outDir, 'confusion.json'), JSON.stringify({ labels, matrix: metrics.confusion }) + '\n');
    await writeFile(join(outDir, 'confusion.png'), await plotConfusionMatrix(labels, metrics.confusion, `${manifest.version} on ${which}`));
    await writeFile(join(outDir, 'misclassified.json'), JSON.stringify(misclassified, null, 2) + '\n');
    if (bn.failed.length) await writeFile(join(outDir, 'skipped-images.json'), JSON.stringify(bn.failed, null, 2) + '\n');
    return { metrics, misclassified, failed: bn.failed, split: which, outDir, modelVersion: manifest.version };
  } finally {
    model.head.dispose();
  }
}
