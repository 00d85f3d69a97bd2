import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '@shelfsight/common';
import { ARCHIVE_FILES, LABELS_FILE, MANIFEST_FILE, OUTPUTS_FILE, packArtifact, TRAINING_ROWS_FILE, unpackArtifact, WEIGHTS_FILE } from '@shelfsight/contracts';
import { z } from 'zod';
import { HUB_TARGET_SPEC, hubJson, hubRequest, HubRequestError, hubTargetOf, type HubTarget } from '../hub-client';
import { addConfigOptions, flagsFrom } from '../options';


const SummarySchema = z.object({
  version: z.string(),
  backbone: z.object({ id: z.string() }),
  labels: z.array(z.string()),
  headType: z.string(),
  source: z.string(),
  accuracy: z.number().nullable(),
  releasable: z.boolean().nullable(),
  gateReason: z.string().nullable(),
  registeredAt: z.string(),
});

const ComparisonSchema = z.object({
  a: z.string(),
  b: z.string(),
  evaluationRows: z.number(),
  overall: z.object({ a: z.number(), b: z.number(), delta: z.number() }),
  perCategory: z.array(z.object({ category: z.string(), rows: z.number(), a: z.number(), b: z.number(), delta: z.number() })),
});

const pct = (v: number | null) => (v === null ? '   n/a' : `${(v * 100).toFixed(1).padStart(5)}%`);
const signedPct = (v: number) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}`;
const out = (line: string): void => void process.stdout.write(line + '\n');

/** `shelf models …`: the model registry over the hub's REST API. */
export function registerModels(program: Command): void {
  const models = program.command('models').description('The hub\u2019s model registry: list, show, compare, register and download head versions');
  const access = (opts: Record<string, unknown>): HubTarget => {
    return hubTargetOf(loadConfig(HUB_TARGET_SPEC, flagsFrom(HUB_TARGET_SPEC, opts)));
  };
  const sub = (name: string, description: string) => addConfigOptions(models.command(name).description(description), HUB_TARGET_SPEC);

  sub('list', 'Versions, newest first, with accuracy on the frozen evaluation set and the gate verdict')
    .option('--json', 'print the JSON the hub answers')
    .action(async (opts: Record<string, unknown>) => {
      const list = await hubJson(access(opts), 'GET', '/models', z.array(SummarySchema));
      if (opts.json) return out(JSON.stringify(list, null, 2));
      out(['version'.padEnd(34), 'backbone'.padEnd(20), 'classes', 'head'.padEnd(10), 'source', 'accuracy', 'releasable', 'reason'].join('  '));
      for (const m of list) {
        out([m.version.padEnd(34), m.backbone.id.slice(0, 20).padEnd(20), String(m.labels.length).padStart(7), m.headType.padEnd(10), m.source.padEnd(6), pct(m.accuracy).padStart(8), String(m.releasable ?? 'n/a').padEnd(10), m.gateReason ?? ''].join('  '));
      }
    });

  sub('show', 'One version: lineage, metrics with confusion matrix, gate verdict, re-score state (JSON)')
    .argument('<version>')
    .action(async (version: string, opts: Record<string, unknown>) => {
      out(JSON.stringify(await hubJson(access(opts), 'GET', `/models/${encodeURIComponent(version)}`, z.unknown()), null, 2));
    });

  sub('compare', 'Overall and per-category accuracy of <b> minus <a> on their shared frozen evaluation set')
    .argument('<a>')
    .argument('<b>')
    .option('--json', 'print the JSON the hub answers')
    .action(async (a: string, b: string, opts: Record<string, unknown>) => {
      const c = await hubJson(access(opts), 'GET', `/models/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`, ComparisonSchema);
      if (opts.json) return out(JSON.stringify(c, null, 2));
      out(`${c.a} -> ${c.b} on ${c.evaluationRows} frozen evaluation rows`);
      out(['category'.padEnd(24), 'rows'.padStart(6), 'a'.padStart(7), 'b'.padStart(7), 'delta'.padStart(7)].join('  '));
      for (const r of c.perCategory) out([r.category.padEnd(24), String(r.rows).padStart(6), pct(r.a).padStart(7), pct(r.b).padStart(7), signedPct(r.delta).padStart(7)].join('  '));
      out(['overall'.padEnd(24), String(c.evaluationRows).padStart(6), pct(c.overall.a).padStart(7), pct(c.overall.b).padStart(7), signedPct(c.overall.delta).padStart(7)].join('  '));
    });

  sub('register', `Upload an artifact folder written by \`shelf train\` (${TRAINING_ROWS_FILE} too when present: write it with --training-rows)`)
    .argument('<dir>')
    .option('--parent <version>', 'the version this one was trained from')
    .action(async (dir: string, opts: Record<string, unknown>) => {
      const read = (f: string) => readFile(join(dir, f));
      const optional = (f: string) => read(f).catch(() => undefined);
      let files;
      try {
        files = { manifest: await read(MANIFEST_FILE), weights: await read(WEIGHTS_FILE), labels: await read(LABELS_FILE) };
      } catch {
        throw new HubRequestError(`${dir} is not an artifact folder (needs ${MANIFEST_FILE}, ${WEIGHTS_FILE}, ${LABELS_FILE})`);
      }
      const outputs = await optional(OUTPUTS_FILE);
      const trainingRows = await optional(TRAINING_ROWS_FILE);
      const tar = await packArtifact({ ...files, ...(outputs ? { outputs } : {}), ...(trainingRows ? { trainingRows } : {}) });
      const query = typeof opts.parent === 'string' ? `?parent=${encodeURIComponent(opts.parent)}` : '';
      const res = await hubRequest(access(opts), 'POST', `/models${query}`, { data: tar, contentType: 'application/x-tar' });
      const m = SummarySchema.extend({ metrics: z.object({ rows: z.number() }).passthrough().nullable() }).parse(await res.json());
      process.stderr.write(
        `${res.status === 201 ? 'registered' : 'already registered'} ${m.version}: accuracy ${pct(m.accuracy).trim()}${m.metrics ? ` on ${m.metrics.rows} frozen rows` : ''}; ` +
          `${m.releasable ? 'releasable' : 'NOT releasable'} (${m.gateReason})${trainingRows ? '' : `; no ${TRAINING_ROWS_FILE} sent`}\n`,
      );
      out(JSON.stringify({ version: m.version, releasable: m.releasable, accuracy: m.accuracy, gateReason: m.gateReason }));
    });

  sub('download', 'Fetch a version\u2019s artifact, check its SHA-256, and write the artifact folder')
    .argument('<version>')
    .requiredOption('--out <dir>', 'artifact folder to write')
    .action(async (version: string, opts: Record<string, unknown>) => {
      const res = await hubRequest(access(opts), 'GET', `/models/${encodeURIComponent(version)}/artifact`);
      const tar = Buffer.from(await res.arrayBuffer());
      const expected = res.headers.get('x-artifact-sha256');
      const actual = createHash('sha256').update(tar).digest('hex');
      if (expected && expected !== actual) throw new HubRequestError(`artifact of ${version} arrived damaged: sha256 ${actual}, the hub says ${expected}`);
      const files = await unpackArtifact(tar);
      const dir = String(opts.out);
      await mkdir(dir, { recursive: true });
      const names: Record<string, Buffer | undefined> = {
        [MANIFEST_FILE]: files.manifest,
        [WEIGHTS_FILE]: files.weights,
        [LABELS_FILE]: files.labels,
        [OUTPUTS_FILE]: files.outputs,
        [TRAINING_ROWS_FILE]: files.trainingRows,
      };
      const written = ARCHIVE_FILES.filter((f) => names[f]);
      for (const f of written) await writeFile(join(dir, f), names[f] as Buffer);
      out(JSON.stringify({ version, out: dir, sha256: actual, files: written }));
    });
}
