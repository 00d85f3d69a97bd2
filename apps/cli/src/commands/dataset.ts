import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, loadConfig } from '@shelfsight/common';
import { countByLabel, groceryStoreCsv, importDataset, loadDataset, splitDataset } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom } from '../options';
import { visionAction } from './vision-options';

const IMPORT_SPEC = {
  csv: { env: 'SHELF_IMPORT_CSV', flag: 'csv', description: 'CSV with an image id / file column and a label column', schema: z.string().min(1) },
  images: { env: 'SHELF_IMPORT_IMAGES', flag: 'images', description: 'folder holding the images named in the CSV', schema: z.string().min(1) },
  out: { env: 'SHELF_IMPORT_OUT', flag: 'out', description: 'class-folder dataset to write', schema: z.string().min(1) },
  imageColumn: { env: 'SHELF_IMPORT_IMAGE_COLUMN', flag: 'image-column', description: 'CSV column naming the image (id or file name)', schema: cfg.string('image') },
  labelColumn: { env: 'SHELF_IMPORT_LABEL_COLUMN', flag: 'label-column', description: 'CSV column holding the label', schema: cfg.string('label') },
  mode: { env: 'SHELF_IMPORT_MODE', flag: 'mode', description: 'copy or link (symlinks)', schema: z.enum(['copy', 'link']).default('copy') },
  balance: { env: 'SHELF_IMPORT_BALANCE', flag: 'balance', description: 'write distorted copies until every class has this many images', schema: z.coerce.number().int().positive().optional() },
};

const GROCERY_SPEC = {
  root: {
    env: 'SHELF_GROCERY_ROOT',
    flag: 'root',
    description: 'the Grocery Store dataset folder, holding train.txt and val.txt (e.g. a clone of github.com/marcusklasson/GroceryStoreDataset/dataset)',
    schema: z.string().min(1),
  },
  labels: { env: 'SHELF_GROCERY_LABELS', flag: 'labels', description: 'coarse (43 classes) or fine (81 classes)', schema: z.enum(['coarse', 'fine']).default('coarse') },
  out: { env: 'SHELF_GROCERY_OUT', flag: 'out', description: 'folder for train.csv and val.csv', schema: z.string().min(1) },
};

const SPLIT_SPEC = {
  data: { env: 'SHELF_TRAIN_DATA', flag: 'data', description: 'class folders or CSV image,label', schema: z.string().min(1) },
  validationPercentage: { env: 'SHELF_VALIDATION_PERCENTAGE', flag: 'validation-percentage', description: 'percent for validation', schema: z.coerce.number().min(0).max(100).default(10) },
  testingPercentage: { env: 'SHELF_TESTING_PERCENTAGE', flag: 'testing-percentage', description: 'percent for testing', schema: z.coerce.number().min(0).max(100).default(10) },
};

/** `shelf dataset …`: prepare image datasets (the seed's preprocessing step). */
export function registerDataset(program: Command): void {
  const dataset = program.command('dataset').description('Prepare image datasets for shelf train / eval');

  const imp = dataset
    .command('import')
    .description('Turn a CSV of image ids and labels plus an image folder into class folders (optionally balanced by augmentation)');
  addConfigOptions(imp, IMPORT_SPEC);
  imp.action(visionAction(async (opts: Record<string, unknown>) => {
    const c = loadConfig(IMPORT_SPEC, flagsFrom(IMPORT_SPEC, opts));
    const r = await importDataset({ ...c });
    for (const m of r.missing) process.stderr.write(`shelf dataset import: image not found: ${m}\n`);
    process.stdout.write(JSON.stringify({ out: c.out, imported: r.imported, augmented: r.augmented, missing: r.missing.length, classes: r.classes }) + '\n');
  }));

  const grocery = dataset
    .command('grocery-store')
    .description('Write train.csv / val.csv (image,label with absolute paths) for the Grocery Store dataset');
  addConfigOptions(grocery, GROCERY_SPEC);
  grocery.action(visionAction(async (opts: Record<string, unknown>) => {
    const c = loadConfig(GROCERY_SPEC, flagsFrom(GROCERY_SPEC, opts));
    const train = await groceryStoreCsv(c.root, 'train.txt', c.labels, `${c.out}/train.csv`);
    const val = await groceryStoreCsv(c.root, 'val.txt', c.labels, `${c.out}/val.csv`);
    process.stdout.write(JSON.stringify({ train: `${c.out}/train.csv`, trainImages: train, val: `${c.out}/val.csv`, valImages: val, labels: c.labels }) + '\n');
  }));

  const split = dataset.command('split').description("Show retrain.py's stable hash split of a dataset (counts per class and set)");
  addConfigOptions(split, SPLIT_SPEC);
  split.action(visionAction(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPLIT_SPEC, flagsFrom(SPLIT_SPEC, opts));
    const ds = await loadDataset(c.data);
    const s = splitDataset(ds, c.validationPercentage, c.testingPercentage);
    const per = Object.fromEntries(
      ds.labels.map((l) => [l, { training: countByLabel(s.training).get(l) ?? 0, validation: countByLabel(s.validation).get(l) ?? 0, testing: countByLabel(s.testing).get(l) ?? 0 }]),
    );
    process.stdout.write(JSON.stringify({ data: ds.source, training: s.training.length, validation: s.validation.length, testing: s.testing.length, classes: per }) + '\n');
  }));
}
