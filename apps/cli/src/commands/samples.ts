import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, createProgress, loadConfig, type ConfigSpec } from '@shelfsight/common';
import { HUB_TARGET_SPEC, hubFetch, hubJson, HubRequestError, hubTargetOf as targetOf, type HubTarget } from '../hub-client';
export { HUB_TARGET_SPEC };
import { addConfigOptions, flagsFrom } from '../options';


const LIST_SPEC = {
  ...HUB_TARGET_SPEC,
  state: { env: 'SHELF_SAMPLES_STATE', flag: 'state', description: 'pending, labelled or skipped', schema: z.enum(['pending', 'labelled', 'skipped']).default('pending') },
  order: { env: 'SHELF_SAMPLES_ORDER', flag: 'order', description: 'margin, entropy, newest or diverse', schema: z.enum(['margin', 'entropy', 'newest', 'diverse']).default('margin') },
  category: { env: 'SHELF_SAMPLES_CATEGORY', flag: 'category', description: 'scored category', schema: cfg.optionalString() },
  predicted: { env: 'SHELF_SAMPLES_PREDICTED', flag: 'predicted', description: 'the device\u2019s predicted category', schema: cfg.optionalString() },
  minConfidence: { env: 'SHELF_SAMPLES_MIN_CONFIDENCE', flag: 'min-confidence', description: 'lowest scored confidence', schema: z.coerce.number().min(0).max(1).optional() },
  maxConfidence: { env: 'SHELF_SAMPLES_MAX_CONFIDENCE', flag: 'max-confidence', description: 'highest scored confidence', schema: z.coerce.number().min(0).max(1).optional() },
  device: { env: 'SHELF_SAMPLES_DEVICE', flag: 'device', description: 'device id', schema: cfg.optionalString() },
  site: { env: 'SHELF_SAMPLES_SITE', flag: 'site', description: 'site', schema: cfg.optionalString() },
  reason: { env: 'SHELF_SAMPLES_REASON', flag: 'reason', description: 'low_confidence, small_margin, audit, requested or disagreement', schema: cfg.optionalString() },
  from: { env: 'SHELF_SAMPLES_FROM', flag: 'from', description: 'arrived at or after (ISO time)', schema: cfg.optionalString() },
  to: { env: 'SHELF_SAMPLES_TO', flag: 'to', description: 'arrived before (ISO time)', schema: cfg.optionalString() },
  limit: { env: 'SHELF_SAMPLES_LIMIT', flag: 'limit', description: 'samples to show', schema: cfg.int(20, 1) },
  json: { env: 'SHELF_SAMPLES_JSON', flag: 'json', description: 'one JSON object per line instead of a table', schema: cfg.bool(false) },
} as const satisfies ConfigSpec;

const LABEL_SPEC = {
  ...HUB_TARGET_SPEC,
  csv: { env: 'SHELF_LABELS_CSV', flag: 'csv', description: 'CSV with columns id,category: label many samples', schema: cfg.optionalString() },
} as const satisfies ConfigSpec;

const EXPORT_SPEC = {
  ...HUB_TARGET_SPEC,
  out: { env: 'SHELF_EXPORT_OUT', flag: 'out', description: 'folder to write the dataset to', schema: z.string().min(1) },
  format: {
    env: 'SHELF_EXPORT_FORMAT',
    flag: 'format',
    description: 'folders (OUT/<label>/<id>.jpg, for shelf train --data OUT) or csv (OUT/samples.csv image,label + OUT/images/, for shelf train --data OUT/samples.csv)',
    schema: z.enum(['folders', 'csv']).default('folders'),
  },
} as const satisfies ConfigSpec;

const SampleSchema = z.object({
  id: z.string(),
  deviceId: z.string(),
  reason: z.string(),
  site: z.string(),
  location: z.string(),
  receivedAt: z.string(),
  state: z.string(),
  label: z.string().nullable(),
  priority: z.number(),
  scored: z.object({ category: z.string(), confidence: z.number(), margin: z.number() }),
});
type SampleRow = z.infer<typeof SampleSchema>;
const PageSchema = z.object({ items: z.array(SampleSchema), nextCursor: z.string().nullable() });
const LabelResultSchema = z.object({ labelled: z.array(z.string()), missing: z.array(z.string()) });


/** Every sample in `state`, page by page (the export). */
async function* allSamples(target: HubTarget, state: string): AsyncGenerator<SampleRow> {
  let cursor: string | null = null;
  do {
    const page: z.infer<typeof PageSchema> = await hubJson(target, 'GET', `/samples?state=${state}&order=newest&limit=500${cursor ? `&cursor=${cursor}` : ''}`, PageSchema);
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor);
}

/** `shelf samples …`: the labelling queue from a terminal. */
export function registerSamples(program: Command): void {
  const samples = program.command('samples').description('List, label and export the hub\u2019s samples (the labelling queue)');

  const list = samples.command('list').description('Show the queue (default: pending, least margin first)');
  addConfigOptions(list, LIST_SPEC);
  list.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(LIST_SPEC, flagsFrom(LIST_SPEC, opts));
    const q = new URLSearchParams({ state: c.state, order: c.order, limit: String(Math.min(c.limit, 500)) });
    for (const k of ['category', 'predicted', 'device', 'site', 'reason', 'from', 'to', 'minConfidence', 'maxConfidence'] as const) {
      const v = c[k];
      if (v !== undefined) q.set(k, String(v));
    }
    const page = await hubJson(targetOf(c), 'GET', `/samples?${q}`, PageSchema);
    if (c.json) {
      for (const s of page.items) process.stdout.write(JSON.stringify(s) + '\n');
      return;
    }
    const rows = page.items.map((s) => [s.id, s.state, s.label ?? s.scored.category, s.scored.confidence.toFixed(2), s.scored.margin.toFixed(3), s.reason, s.deviceId, `${s.site}/${s.location}`]);
    printTable(['id', 'state', 'category', 'conf', 'margin', 'reason', 'device', 'location'], rows);
    process.stderr.write(`${page.items.length} samples${page.nextCursor ? ' (more: raise --limit)' : ''}\n`);
  });

  const label = samples
    .command('label [id] [category]')
    .description('Label (or relabel) one sample, or many from a CSV with columns id,category (--csv)');
  addConfigOptions(label, LABEL_SPEC);
  label.action(async (id: string | undefined, category: string | undefined, opts: Record<string, unknown>) => {
    const c = loadConfig(LABEL_SPEC, flagsFrom(LABEL_SPEC, opts));
    const target = targetOf(c);
    if (c.csv) {
      const byCategory = await readLabelCsv(c.csv);
      let labelled = 0;
      const missing: string[] = [];
      for (const [cat, ids] of byCategory) {
        for (let i = 0; i < ids.length; i += 1000) {
          const r = await hubJson(target, 'POST', '/samples/labels', LabelResultSchema, { ids: ids.slice(i, i + 1000), category: cat });
          labelled += r.labelled.length;
          missing.push(...r.missing);
        }
      }
      for (const m of missing) process.stderr.write(`shelf samples label: no sample ${m}\n`);
      process.stdout.write(JSON.stringify({ labelled, missing: missing.length, categories: byCategory.size }) + '\n');
      if (missing.length > 0) process.exitCode = 1;
      return;
    }
    if (!id || !category) throw new HubRequestError('give a sample id and a category, or --csv file.csv');
    const s = await hubJson(target, 'POST', `/samples/${encodeURIComponent(id)}/label`, SampleSchema, { category });
    process.stdout.write(JSON.stringify({ id: s.id, state: s.state, label: s.label }) + '\n');
  });

  const exp = samples.command('export').description('Write the labelled samples as a dataset that shelf train reads (class folders, or CSV plus images)');
  addConfigOptions(exp, EXPORT_SPEC);
  exp.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(EXPORT_SPEC, flagsFrom(EXPORT_SPEC, opts));
    const target = targetOf(c);
    const { csvField } = await import('@shelfsight/vision');
    await mkdir(c.out, { recursive: true });
    const counts = await hubJson(target, 'GET', '/samples/counts', z.object({ states: z.record(z.string(), z.number()) }));
    const lines = ['image,label'];
    const perLabel: Record<string, number> = {};
    const progress = createProgress('export', counts.states.labelled ?? 0);
    for await (const s of allSamples(target, 'labelled')) {
      if (!s.label) continue;
      const image = Buffer.from(await (await hubFetch(target, 'GET', `/samples/${s.id}/thumbnail`)).arrayBuffer());
      const rel = c.format === 'folders' ? join(s.label, `sample-${s.id}.jpg`) : join('images', `sample-${s.id}.jpg`);
      await mkdir(join(c.out, rel, '..'), { recursive: true });
      await writeFile(join(c.out, rel), image);
      lines.push(`${csvField(rel)},${csvField(s.label)}`);
      perLabel[s.label] = (perLabel[s.label] ?? 0) + 1;
      progress.tick();
    }
    progress.done();
    const data = c.format === 'csv' ? join(c.out, 'samples.csv') : c.out;
    if (c.format === 'csv') await writeFile(data, lines.join('\n') + '\n');
    process.stdout.write(JSON.stringify({ out: c.out, format: c.format, data, images: lines.length - 1, labels: perLabel }) + '\n');
  });
}

/** id,category rows grouped by category (one bulk request per category). */
async function readLabelCsv(path: string): Promise<Map<string, string[]>> {
  const { readCsv } = await import('@shelfsight/vision');
  const { header, rows } = await readCsv(path);
  const iId = header.indexOf('id');
  const iCat = header.indexOf('category');
  if (iId < 0 || iCat < 0) throw new HubRequestError(`${path}: expected a CSV header with columns id,category (got ${header.join(',')})`);
  const out = new Map<string, string[]>();
  rows.forEach((r, n) => {
    const id = r[iId]?.trim();
    const cat = r[iCat]?.trim();
    if (!id || !cat) throw new HubRequestError(`${path}:${n + 2}: id and category are both required`);
    out.set(cat, [...(out.get(cat) ?? []), id]);
  });
  return out;
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n');
}
