import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, createLogger, loadConfig } from '@shelfsight/common';
import { predictImagesWithModel, predictionsToCsv } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom } from '../options';
import { visionAction, EXTRACTION_SPEC, extractionFrom, TTA } from './vision-options';

export const PREDICT_SPEC = {
  model: { env: 'SHELF_MODEL', flag: 'model', description: 'model artifact folder', schema: z.string().min(1) },
  topK: { env: 'SHELF_TOP_K', flag: 'top-k', description: 'best labels per image (CSV: extra top_k column when > 1)', schema: cfg.int(1, 1) },
  format: { env: 'SHELF_PREDICT_FORMAT', flag: 'format', description: 'csv or json', schema: z.enum(['csv', 'json']).default('csv') },
  tta: { env: 'SHELF_TTA', flag: 'tta', description: 'test-time augmentation (default: as trained)', schema: TTA.optional() },
  backbone: { env: 'SHELF_BACKBONE', flag: 'backbone', description: 'backbone (default: the one recorded in the model)', schema: cfg.optionalString() },
  ...EXTRACTION_SPEC,
};

/** `shelf predict`: the seed's test step — label images, CSV (image,label,confidence) or JSON on stdout. */
export function registerPredict(program: Command): void {
  const cmd = program
    .command('predict')
    .description('Label images with a model: CSV image,label,confidence (or JSON) on stdout; unreadable images are reported on stderr and skipped')
    .argument('<files-or-folders...>', 'images, or folders of images');
  addConfigOptions(cmd, PREDICT_SPEC);
  cmd.action(visionAction(async (inputs: string[], opts: Record<string, unknown>) => {
    const c = loadConfig(PREDICT_SPEC, flagsFrom(PREDICT_SPEC, opts));
    const r = await predictImagesWithModel({ ...extractionFrom(c), model: c.model, inputs, topK: c.topK, tta: c.tta, backbone: c.backbone });
    // Decode failures were logged where they happened; missing paths are reported here.
    const log = createLogger('predict');
    for (const f of r.failed.filter((x) => x.error === 'no such file or folder')) log.warn('image skipped', { image: f.path, error: f.error });
    if (c.format === 'json') {
      process.stdout.write(JSON.stringify({ modelVersion: r.modelVersion, predictions: r.predictions, skipped: r.failed }, null, 2) + '\n');
    } else {
      process.stdout.write(predictionsToCsv(r.predictions, c.topK));
    }
    if (r.failed.length > 0) process.exitCode = 3;
  }));
}
