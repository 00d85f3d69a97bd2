import { readdir, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { ScoredCategory } from '@shelfsight/contracts';
import { assertSameBackbone, loadModel } from '../artifact/artifact';
import { computeBottlenecks, type BottleneckFailure } from '../bottlenecks';
import { csvField, IMAGE_EXTENSIONS } from '../data/dataset';
import { ttaViews, type TtaMode } from '../data/views';
import { rankTopK } from '../tfjs-classifier';
import { openExtraction, type ExtractionOptions } from './context';
import { predictImages } from './infer';
import { tunedFeatures } from '../tail/tuned-features';

export interface PredictImagesOptions extends Omit<ExtractionOptions, 'backbone'> {
  model: string;
  /** Files or folders, as given on the command line. */
  inputs: string[];
  backbone?: string;
  topK: number;
  tta?: TtaMode;
}

export interface Prediction {
  /** Exactly as given; for a folder, the folder as given joined with the file name. */
  image: string;
  label: string;
  confidence: number;
  topK: ScoredCategory[];
}

export interface PredictImagesResult {
  predictions: Prediction[];
  failed: BottleneckFailure[];
  modelVersion: string;
}

/** Expand folders (their image files, sorted) keeping names as the user wrote them. */
export async function expandInputs(inputs: string[]): Promise<{ images: string[]; missing: BottleneckFailure[] }> {
  const images: string[] = [];
  const missing: BottleneckFailure[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = await stat(input);
    } catch {
      missing.push({ path: input, error: 'no such file or folder' });
      continue;
    }
    if (st.isDirectory()) {
      const names = (await readdir(input, { withFileTypes: true }))
        .filter((e) => e.isFile() && IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase()))
        .map((e) => e.name)
        .sort();
      const prefix = input.endsWith('/') ? input : `${input}/`;
      images.push(...names.map((n) => prefix + n));
    } else {
      images.push(input);
    }
  }
  return { images, missing };
}

/** retrain.py's test step: label images with a trained model. Unreadable images are reported, not fatal. */
export async function predictImagesWithModel(opts: PredictImagesOptions): Promise<PredictImagesResult> {
  const model = await loadModel(opts.model);
  try {
    const { images, missing } = await expandInputs(opts.inputs);
    const tta = opts.tta ?? ((model.manifest.training.tta as TtaMode | undefined) ?? 'none');
    const views = ttaViews(tta);
    if (images.length === 0) return { predictions: [], failed: missing, modelVersion: model.manifest.version };
    const backbone = opts.backbone ?? model.manifest.backbone.source;
    const tail = model.tail;
    let bn;
    if (tail) {
      // A tuned model: the backbone up to the freeze point (float activations, not the
      // quantised training cache, so the agent's frames and these agree), then the tail.
      bn = await tunedFeatures(tail, images.map((path) => ({ path, views })), { ...opts, backbone }, (b) => assertSameBackbone(model.manifest, b));
    } else {
      const ctx = await openExtraction({ ...opts, backbone }, images.length * views.length);
      try {
        assertSameBackbone(model.manifest, ctx.extractor.backbone);
        bn = await computeBottlenecks(
          images.map((path) => ({ path, views })),
          ctx.extractor,
          ctx.cache,
          { logger: ctx.logger },
        );
      } finally {
        await ctx.close();
      }
    }
    const ok = images.filter((i) => bn.features.has(i));
    const probs = predictImages(model.head, ok.map((i) => [...(bn.features.get(i) as Map<string, Float32Array>).values()]));
    const predictions = ok.map((image, i) => {
      const topK = rankTopK(probs[i] as Float32Array, model.labels, opts.topK);
      const first = topK[0] as ScoredCategory;
      return { image, label: first.category, confidence: first.confidence, topK };
    });
    return { predictions, failed: [...missing, ...bn.failed], modelVersion: model.manifest.version };
  } finally {
    model.head.dispose();
  }
}

/** CSV with header `image,label,confidence` (plus `top_k` as `label:confidence;…` when k > 1). */
export function predictionsToCsv(predictions: Prediction[], topK: number): string {
  const header = topK > 1 ? 'image,label,confidence,top_k' : 'image,label,confidence';
  const rows = predictions.map((p) => {
    const base = `${csvField(p.image)},${csvField(p.label)},${p.confidence.toFixed(6)}`;
    return topK > 1 ? `${base},${csvField(p.topK.map((t) => `${t.category}:${t.confidence.toFixed(6)}`).join(';'))}` : base;
  });
  return [header, ...rows].join('\n') + '\n';
}
