import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, loadConfig } from '@shelfsight/common';
import { evaluateModel } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom } from '../options';
import { visionAction, EXTRACTION_SPEC, extractionFrom, TTA } from './vision-options';

export const EVAL_SPEC = {
  model: { env: 'SHELF_MODEL', flag: 'model', description: 'model artifact folder', schema: z.string().min(1) },
  data: { env: 'SHELF_EVAL_DATA', flag: 'data', description: 'labelled images: class folders or CSV image,label', schema: z.string().min(1) },
  split: {
    env: 'SHELF_EVAL_SPLIT',
    flag: 'split',
    description: 'part of --data to score: all, training, validation, testing (default: testing if --data is the training data, else all)',
    schema: z.enum(['all', 'training', 'validation', 'testing']).optional(),
  },
  topK: { env: 'SHELF_TOP_K', flag: 'top-k', description: 'k of the top-k accuracy', schema: cfg.int(5, 1) },
  tta: { env: 'SHELF_TTA', flag: 'tta', description: 'test-time augmentation (default: as trained)', schema: TTA.optional() },
  backbone: { env: 'SHELF_BACKBONE', flag: 'backbone', description: 'backbone (default: the one recorded in the model)', schema: cfg.optionalString() },
  out: { env: 'SHELF_EVAL_OUT', flag: 'out', description: 'report folder (default <model>/eval)', schema: cfg.optionalString() },
  quiet: { env: 'SHELF_EVAL_QUIET', flag: 'quiet', description: 'do not list misclassified images', schema: cfg.bool(false) },
  ...EXTRACTION_SPEC,
};

/** `shelf eval`: accuracy, top-k, per-class precision/recall, confusion matrix (JSON + PNG), misclassified images. */
export function registerEval(program: Command): void {
  const cmd = program.command('eval').description('Evaluate a model on labelled images; writes metrics.json, confusion.json/.png, misclassified.json');
  addConfigOptions(cmd, EVAL_SPEC);
  cmd.action(visionAction(async (opts: Record<string, unknown>) => {
    const c = loadConfig(EVAL_SPEC, flagsFrom(EVAL_SPEC, opts));
    const r = await evaluateModel({ ...extractionFrom(c), model: c.model, data: c.data, split: c.split, topK: c.topK, tta: c.tta, backbone: c.backbone, out: c.out });
    const m = r.metrics;
    const out = process.stdout;
    if (!c.quiet && r.misclassified.length > 0) {
      out.write('=== MISCLASSIFIED IMAGES ===\n');
      for (const x of r.misclassified) out.write(`${x.image}  ${x.label} -> ${x.predicted} (${x.confidence.toFixed(3)})\n`);
    }
    out.write(`\n${'class'.padEnd(28)} support precision recall\n`);
    for (const pc of m.perClass) out.write(`${pc.label.padEnd(28)} ${String(pc.support).padStart(7)} ${pc.precision.toFixed(3).padStart(9)} ${pc.recall.toFixed(3).padStart(6)}\n`);
    out.write(`\naccuracy ${(m.accuracy * 100).toFixed(2)}%  top-${m.topK} ${(m.topKAccuracy * 100).toFixed(2)}%  on ${m.images} images (${r.split}); skipped ${r.failed.length}; report in ${r.outDir}\n`);
    out.write(
      JSON.stringify({ model: c.model, version: r.modelVersion, split: r.split, images: m.images, accuracy: m.accuracy, topK: m.topK, topKAccuracy: m.topKAccuracy, skipped: r.failed.length, misclassified: r.misclassified.length, report: r.outDir }) + '\n',
    );
  }));
}
