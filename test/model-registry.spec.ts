import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeTrainingRows, encodeTrainingRows, packArtifact, unpackArtifact, TRAINING_ROWS_FILE, type TrainingRows } from '@shelfsight/contracts';
import { silentLogger } from '@shelfsight/common';
import { DEFAULT_TRAIN_OPTIONS, describeBackbone, InThreadExtractor, saveModel, seededRng, TRAIN_DEFAULTS, trainHead, trainModel } from '@shelfsight/vision';
import { meanColourBackbone, writeColourDataset } from '../libs/vision/src/testing/fixtures';
import { BLOB_STORE, createModelRegistry, PrismaService, type BlobStore } from '@shelfsight/hub';
import type { DatabaseKind } from './support/databases';
import { keyedFetch, keyedJson, postArchive, postEvaluationRows, REGISTRY_TEST_KEY, rowsOf, tinyArchive } from './support/model-artifacts';
import { hasExternalPostgres } from './support/services';
import { eventually, startTestHub, type TestHub } from './support/test-hub';

const run = promisify(execFile);

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

interface Model {
  version: string;
  labels: string[];
  releasable: boolean;
  gateReason: string;
  categorySet: string;
  accuracy: number;
  artifact: { sha256: string; bytes: number };
  trainingSet: { sha256: string; rows: number } | null;
  lineage: { parent: string | null; base: Record<string, unknown>; sampleIds: string[] };
  metrics: { rows: number; accuracy: number; frozenBy: string; labels: string[]; confusion: number[][]; perCategory: Record<string, { accuracy: number; rows: number }> };
  rescore: { state: string | null; samples: number | null };
}

/** Colour embeddings (the mean-colour backbone's features): red, green, blue with noise; every 4th row held out (testing, split 2). */
function colourRows(seed: number, perClass: number): TrainingRows {
  const rng = seededRng(seed);
  const labels = ['blue', 'green', 'red'];
  const centre: Record<string, number[]> = { red: [0.8, 0.2, 0.2], green: [0.2, 0.8, 0.2], blue: [0.2, 0.2, 0.8] };
  const items = labels.flatMap((label) =>
    Array.from({ length: perClass }, (_, i) => ({
      label,
      x: (centre[label] as number[]).map((v) => v + (rng() - 0.5) * 0.2),
      split: (i % 4 === 3 ? 2 : 0) as 0 | 2,
      id: i === 0 ? `sample:${label.length}${seed}` : `image:${label}/${seed}-${i}.jpg#centre`,
    })),
  );
  return rowsOf(labels, items);
}

/** Train a real head with the vision core on the training split and write its artifact folder (plus the rows file). */
async function trainColourModel(rows: TrainingRows, seed: number): Promise<string> {
  const train = { dim: rows.dim, x: new Float32Array(0), y: new Int32Array(0) };
  const idx = [...rows.split.keys()].filter((i) => rows.split[i] === 0);
  train.x = Float32Array.from(idx.flatMap((i) => Array.from(rows.x.subarray(i * rows.dim, (i + 1) * rows.dim))));
  train.y = Int32Array.from(idx.map((i) => rows.label[i] as number));
  const r = await trainHead(train, undefined, { ...DEFAULT_TRAIN_OPTIONS, head: { type: 'softmax', normalize: 'none' }, numClasses: rows.labels.length, steps: 300, batchSize: 32, learningRate: 0.05, seed });
  const dir = join(mkdtempSync(join(tmpdir(), 'shelfsight-model-')), 'model');
  await saveModel(dir, { head: r.head, labels: rows.labels, backbone: describeBackbone(meanColourBackbone()), training: { data: 'generated colours', rows: { training: idx.length } }, metrics: {}, createdAt: new Date(Date.now() - seed * 1000) });
  r.head.dispose();
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, TRAINING_ROWS_FILE), encodeTrainingRows(rows));
  return dir;
}

async function folderArchive(dir: string, withRows = true): Promise<Buffer> {
  const read = (f: string) => readFile(join(dir, f));
  return packArtifact({ manifest: await read('manifest.json'), weights: await read('head.bin'), labels: await read('labels.txt'), ...(withRows ? { trainingRows: await read(TRAINING_ROWS_FILE) } : {}) });
}

/**
 * The gate's data: features [apples, milk, juice, hint]. Held out: 40 apples (12 "hard":
 * only the hint says apples), 40 juice (12 hard: hint -1), 10 milk.
 */
function shelfRows(): TrainingRows {
  const items: Array<{ label: string; x: number[]; split: 0 | 2 }> = [];
  for (let i = 0; i < 40; i++) items.push({ label: 'apples', x: i < 28 ? [1, 0, 0, 0] : [0, 0, 0, 1], split: 2 });
  for (let i = 0; i < 40; i++) items.push({ label: 'juice', x: i < 28 ? [0, 0, 1, 0] : [0, 0, 0, -1], split: 2 });
  for (let i = 0; i < 10; i++) items.push({ label: 'milk', x: [0, 1, 0, 0], split: 2 });
  items.push({ label: 'milk', x: [0, 1, 0, 0], split: 0 });
  return rowsOf(['apples', 'juice', 'milk'], items);
}
const SHELF = ['apples', 'juice', 'milk'];
// Kernels are inputDim × labels (apples, juice, milk).
/** Knows the easy rows only; hard rows fall to the milk bias: apples 0.70, juice 0.70, milk 1.00 (overall 0.73). */
const MEDIOCRE = { kernel: [[5, 0, 0], [0, 0, 5], [0, 5, 0], [0, 0, 0]], bias: [0, 0, 1] };
/** Reads the hint, but sends milk to juice: apples 1.00, juice 1.00, milk 0.00 (overall 0.89 — a better average). */
const MILK_COLLAPSE = { kernel: [[5, 0, 0], [0, 5, 0], [0, 5, 0], [5, -5, 0]] };
/** Everything right. */
const PERFECT = { kernel: [[5, 0, 0], [0, 0, 5], [0, 5, 0], [5, -5, 0]] };

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`model registry (${variant.db})`, () => {
    let sut: TestHub;
    const tag = randomBytes(3).toString('hex');
    const api = (path: string) => `${sut.hub.httpUrl}${path}`;
    const model = async (version: string) => (await keyedJson<Model>(api(`/models/${version}`))).body;

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes', { HUB_API_KEY: REGISTRY_TEST_KEY, GATE_MAX_OVERALL_DROP: '0.02', GATE_MAX_CATEGORY_DROP: '0.05', GATE_MIN_EVAL_ROWS: '10', RESCORE_BATCH_ROWS: '7' });
    });
    afterAll(async () => {
      await sut?.stop();
    });

    describe('registration of heads trained with the vision core', () => {
      let first: Model;
      const rows1 = colourRows(1, 40);

      it('verifies and records a version: lineage, backbone, labels, artifact checksum, metrics on the hub\'s evaluation rows', async () => {
        const dir = await trainColourModel(rows1, 1);
        // The hub scores uploads on its own rows only: an admin gives it the held-out photos' rows first.
        const colourBackbone = describeBackbone(meanColourBackbone()).id;
        expect((await postEvaluationRows(sut.hub.httpUrl, colourBackbone, rows1, { testingOnly: true })).status).toBe(201);
        const res = await postArchive(sut.hub.httpUrl, await folderArchive(dir), '?parent=site-zero');
        expect(res.status).toBe(201);
        first = res.body as unknown as Model;
        const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { version: string; backbone: { id: string; checksum: string } };
        expect(first.version).toBe(manifest.version);
        expect(first.releasable).toBe(true);
        expect(first.gateReason).toMatch(/^first version of its backbone: accuracy 1\.00 beats the no-knowledge baseline 0\.33 \(n=30\)/);
        const full = await model(first.version);
        expect(full).toMatchObject({ labels: ['blue', 'green', 'red'], backbone: { id: manifest.backbone.id, checksum: manifest.backbone.checksum }, source: 'upload', trainingSet: { rows: 120 } });
        expect(full.lineage).toEqual({ parent: 'site-zero', base: { data: 'generated colours', rows: { training: 90 } }, sampleIds: ['41', '51', '31'] });
        expect(full.metrics.rows).toBe(30);
        expect(full.metrics.frozenBy).toBe('operator:key:bootstrap');
        expect(full.metrics.confusion).toEqual([[10, 0, 0], [0, 10, 0], [0, 0, 10]]);
        // The artifact downloads as the tar whose SHA-256 the registry recorded.
        const dl = await keyedFetch(api(`/models/${first.version}/artifact`));
        const tar = Buffer.from(await dl.arrayBuffer());
        expect(dl.headers.get('x-artifact-sha256')).toBe(full.artifact.sha256);
        expect(dl.headers.get('etag')).toBe(`"${full.artifact.sha256}"`);
        expect(createHash('sha256').update(tar).digest('hex')).toBe(full.artifact.sha256);
        expect((await unpackArtifact(tar)).weights.equals(await readFile(join(dir, 'head.bin')))).toBe(true);
        expect((await keyedFetch(api(`/models/${first.version}/artifact`), { headers: { 'If-None-Match': `"${full.artifact.sha256}"` } })).status).toBe(304);
        // Its labels became categories; registering the same artifact again changes nothing.
        const prisma = sut.hub.app.get(PrismaService);
        expect((await prisma.$queryRaw<Array<{ name: string }>>`SELECT name FROM categories WHERE name IN ('red', 'green', 'blue') ORDER BY name`).map((r) => r.name)).toEqual(['blue', 'green', 'red']);
        expect((await postArchive(sut.hub.httpUrl, await folderArchive(dir))).status).toBe(200);
        // The same upload as application/octet-stream (a media type the route takes) reaches the registry whole.
        expect((await postArchive(sut.hub.httpUrl, await folderArchive(dir), '', 'application/octet-stream')).status).toBe(200);
        const svg = await keyedFetch(api(`/models/${first.version}/confusion.svg`));
        expect(svg.headers.get('content-type')).toMatch(/image\/svg\+xml/);
        expect(await svg.text()).toMatch(/<svg[\s\S]*>10<\/text>[\s\S]*blue/);
      });

      it('scores a second version on exactly the hub\'s rows, not on its own held-out rows, beside the first', async () => {
        const rows2 = colourRows(2, 60);
        const dir = await trainColourModel(rows2, 2);
        const res = await postArchive(sut.hub.httpUrl, await folderArchive(dir));
        expect(res.status).toBe(201);
        const second = await model(res.body.version as string);
        expect(second.trainingSet?.rows).toBe(180);
        expect(second.metrics.rows).toBe(30);
        expect(second.metrics.frozenBy).toBe('operator:key:bootstrap');
        expect(second.categorySet).toBe(first.categorySet);
        expect(second.releasable).toBe(true);
        expect(second.gateReason).toMatch(new RegExp(`^no regression against ${first.version} on 3 shared categories`));
      });

      it('refuses a version whose own rows trained on the frozen evaluation rows (matched by row id), whatever it scores', async () => {
        const leaky = colourRows(1, 40); // the photos whose testing rows the first version froze ...
        leaky.split.fill(0); // ... all trained on
        const res = await postArchive(sut.hub.httpUrl, await folderArchive(await trainColourModel(leaky, 7)));
        expect(res.status).toBe(201);
        const m = await model(res.body.version as string);
        expect(m.metrics.accuracy).toBe(1);
        expect(m.releasable).toBe(false);
        expect(m.gateReason).toMatch(/^not releasable: 30 of the 30 evaluation rows were among its training or validation rows \(e\.g\. image:/);
        expect((m.metrics as { trainedOnRows?: number }).trainedOnRows).toBe(30);
      });

      it('keeps what shelf train --training-rows writes from real images as declared (testing rows never trained on nor used to pick the epoch); the hub scores it on its own rows only', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'shelfsight-train-'));
        await writeColourDataset(join(dir, 'data'), { cream: [235, 235, 235], oranges: [240, 140, 20], tomatoes: [190, 20, 30] }, 10);
        const backbone = meanColourBackbone(`colour-${tag}`);
        await trainModel({
          ...TRAIN_DEFAULTS,
          backbone: 'unused',
          extractor: new InThreadExtractor(backbone),
          logger: silentLogger,
          cacheDir: join(dir, 'cache'),
          data: join(dir, 'data'),
          out: join(dir, 'model'),
          validationPercentage: 25,
          testingPercentage: 35,
          distortions: { flipLeftRight: false },
          epochs: 20,
          learningRate: 0.1,
          batchSize: 8,
          trainingRows: true,
        });
        const res = await postArchive(sut.hub.httpUrl, await folderArchive(join(dir, 'model')));
        expect(res.status).toBe(201);
        const m = await model(res.body.version as string);
        expect(m.labels).toEqual(['cream', 'oranges', 'tomatoes']);
        expect(m.trainingSet?.rows).toBe(30);
        const images = (m.lineage.base as { images: { training: number; validation: number; testing: number } }).images;
        expect(images.validation).toBeGreaterThan(0);
        expect(images.testing).toBeGreaterThan(0);
        expect(images.training + images.validation + images.testing).toBe(30);
        const rows = decodeTrainingRows(await readFile(join(dir, 'model', TRAINING_ROWS_FILE)));
        expect([...rows.split].filter((x) => x === 2)).toHaveLength(images.testing);
        expect([...rows.split].filter((x) => x === 1)).toHaveLength(images.validation);
        // Its splits are recorded as declared; the hub has no rows of this backbone, so nothing vouches for it.
        expect((m as unknown as { declared: { splits: Record<string, number> } }).declared.splits).toEqual({ training: images.training, validation: images.validation, testing: images.testing });
        expect(m.metrics.rows).toBe(0);
        expect(m.releasable).toBe(false);
      });

      it('refuses damaged artifacts with 422 and the reason, and bodies that are no artifact with 4xx', async () => {
        const dir = await trainColourModel(colourRows(3, 8), 3);
        const read = (f: string) => readFile(join(dir, f));
        const files = { manifest: await read('manifest.json'), weights: await read('head.bin'), labels: await read('labels.txt') };
        const flipped = Buffer.from(files.weights);
        flipped[5] = (flipped[5] as number) ^ 0xff;
        const cases: Array<[Buffer, RegExp]> = [
          [await packArtifact({ ...files, weights: flipped }), /head\.bin checksum differs/],
          [await packArtifact({ ...files, weights: files.weights.subarray(0, 12) }), /head\.bin has 12 bytes, manifest says 48/],
          [await packArtifact({ ...files, labels: Buffer.from('red\ngreen\n') }), /labels\.txt has 2 labels, manifest says 3/],
          [await packArtifact({ ...files, trainingRows: Buffer.from('SSTR-nonsense') }), /training-rows\.bin/],
          [Buffer.from('not a tar at all'.repeat(64)), /not a tar archive/],
        ];
        for (const [body, reason] of cases) {
          const res = await postArchive(sut.hub.httpUrl, body);
          expect(res.status).toBe(422);
          expect(String(res.body.message)).toMatch(reason);
        }
        const noManifest = await keyedFetch(api('/models'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
        expect(noManifest.status).toBe(415);
        expect((await keyedJson<Model[]>(api('/models'))).body.map((m) => m.version)).not.toContain(JSON.parse(files.manifest.toString()).version);
      });
    });

    describe('gate and comparison on one category set', () => {
      const v = (name: string) => `${name}-${tag}`;

      it('passes the first version above the no-knowledge baseline on the hub\'s rows', async () => {
        expect((await postEvaluationRows(sut.hub.httpUrl, 'tiny-backbone', shelfRows(), { testingOnly: true })).status).toBe(201);
        const res = await postArchive(sut.hub.httpUrl, await tinyArchive({ version: v('mediocre'), labels: SHELF, ...MEDIOCRE }, shelfRows()));
        expect(res.status).toBe(201);
        const m = await model(v('mediocre'));
        expect(m.metrics.rows).toBe(90);
        expect(m.metrics.perCategory).toEqual({ apples: { accuracy: 0.7, rows: 40 }, juice: { accuracy: 0.7, rows: 40 }, milk: { accuracy: 1, rows: 10 } });
        expect(m.releasable).toBe(true);
        expect(m.gateReason).toBe('first version of its backbone: accuracy 0.73 beats the no-knowledge baseline 0.44 (n=90); every category has at least 10 evaluation rows');
      });

      it('refuses a version whose average improves while one category collapses, naming the category', async () => {
        const res = await postArchive(sut.hub.httpUrl, await tinyArchive({ version: v('milk-collapse'), labels: SHELF, ...MILK_COLLAPSE }));
        expect(res.status).toBe(201);
        const m = await model(v('milk-collapse'));
        expect(m.metrics.accuracy).toBeGreaterThan(0.88);
        expect(m.releasable).toBe(false);
        expect(m.gateReason).toBe(`not releasable: regresses against ${v('mediocre')}: milk 1.00→0.00 (n=10, p<0.001)`);
      });

      it('passes an equal version and a better one, and compares them per category', async () => {
        await postArchive(sut.hub.httpUrl, await tinyArchive({ version: v('equal'), labels: SHELF, ...MEDIOCRE }));
        expect((await model(v('equal'))).releasable).toBe(true);
        await postArchive(sut.hub.httpUrl, await tinyArchive({ version: v('perfect'), labels: SHELF, ...PERFECT }));
        const perfect = await model(v('perfect'));
        expect(perfect.releasable).toBe(true);
        expect(perfect.gateReason).toBe(`no regression against ${v('equal')} on 3 shared categories (overall 0.73→1.00, n=90, p=1.000)`);
        const cmp = (await keyedJson<{ overall: { a: number; b: number; delta: number }; evaluationRows: number; perCategory: Array<{ category: string; a: number; b: number; delta: number }> }>(
          api(`/models/compare?a=${v('mediocre')}&b=${v('perfect')}`),
        )).body;
        expect(cmp.evaluationRows).toBe(90);
        expect(cmp.overall.delta).toBeCloseTo(24 / 90, 6);
        expect(cmp.perCategory.map((c) => [c.category, +c.delta.toFixed(6)])).toEqual([['apples', 0.3], ['juice', 0.3], ['milk', 0]]);
        // The collapse is now judged against the newest releasable version: refused overall and on milk.
        await postArchive(sut.hub.httpUrl, await tinyArchive({ version: v('collapse-2'), labels: SHELF, ...MILK_COLLAPSE }));
        expect((await model(v('collapse-2'))).gateReason).toBe(`not releasable: regresses against ${v('perfect')}: overall 1.00→0.89 (n=90, p<0.001); milk 1.00→0.00 (n=10, p<0.001)`);
      });

      it('lists newest first with gate verdicts, and refuses to compare versions of different backbones', async () => {
        const list = (await keyedJson<Model[]>(api('/models'))).body;
        expect(list.slice(0, 2).map((m) => [m.version, m.releasable])).toEqual([[v('collapse-2'), false], [v('perfect'), true]]);
        const colours = list.find((m) => m.categorySet !== list[0]?.categorySet) as Model;
        const res = await keyedFetch(api(`/models/compare?a=${v('perfect')}&b=${colours.version}`));
        expect(res.status).toBe(409);
        expect(((await res.json()) as { message: string }).message).toMatch(/different backbones/);
        expect((await keyedFetch(api('/models/nope'))).status).toBe(404);
      });
    });

    describe('shelf models', () => {
      const shelf = async (...args: string[]) => {
        const { stdout } = await run(process.execPath, [join(__dirname, '..', 'bin', 'shelf.js'), 'models', ...args, '--hub-url', sut.hub.httpUrl, '--api-key', REGISTRY_TEST_KEY], { timeout: 60_000 });
        return stdout;
      };

      it('registers a folder, lists, compares and downloads it back byte for byte', async () => {
        const dir = await trainColourModel(colourRows(4, 40), 4);
        const registered = JSON.parse((await shelf('register', dir)).trim()) as { version: string; releasable: boolean };
        expect(registered.releasable).toBe(true);
        expect(await shelf('list')).toContain(registered.version);
        const first = (await keyedJson<Model[]>(api('/models'))).body.find((m) => m.labels.join() === 'blue,green,red' && m.version !== registered.version) as Model;
        const cmp = JSON.parse(await shelf('compare', first.version, registered.version, '--json')) as { perCategory: Array<{ category: string }> };
        expect(cmp.perCategory.map((c) => c.category)).toEqual(['blue', 'green', 'red']);
        const out = join(mkdtempSync(join(tmpdir(), 'shelfsight-dl-')), 'model');
        const dl = JSON.parse((await shelf('download', registered.version, '--out', out)).trim()) as { files: string[] };
        expect(dl.files).toEqual(['manifest.json', 'head.bin', 'labels.txt']);
        for (const f of dl.files) expect((await readFile(join(out, f))).equals(await readFile(join(dir, f)))).toBe(true);
        await expect(shelf('show', 'no-such-version')).rejects.toThrow(/HTTP 404 model version no-such-version not found/);
      });
    });

    describe('backlog re-score', () => {
      it('scores pending samples of the backbone again with a new version, so the queue order follows it', async () => {
        const prisma = sut.hub.app.get(PrismaService);
        const backbone = `rescore-bb-${tag}`;
        const device = `rescore-dev-${tag}`;
        // 20 pending samples; the device was equally unsure of all (margin rising with the id).
        // Even ones are clear apples for the new head, odd ones sit between apples and milk.
        const ids: bigint[] = [];
        for (let i = 0; i < 20; i++) {
          const x = i % 2 === 0 ? [1, 0] : [0.5, 0.52];
          const rows = await prisma.$queryRaw<Array<{ id: bigint }>>`
            INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
              predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
              scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version)
            VALUES (${device}, ${`s${i}`}, 'low_confidence', ${`f${i}`}, 'rescore-site', 'A', 'A-01-1-A', now(), 'apples', 0.5, '[]'::jsonb, 'device-v0', ${backbone},
              ${Buffer.from(Float32Array.from(x).buffer)}, 2, ${'0'.repeat(64)}, 1, 1, 1, 'apples', 0.5, ${0.001 * i}, 0.69, '[]'::jsonb, 'device-v0')
            RETURNING id`;
          ids.push((rows[0] as { id: bigint }).id);
        }
        await prisma.$executeRaw`UPDATE samples SET state = 'labelled', label = 'milk' WHERE id = ${ids[1]}`;
        const queue = async () =>
          (await prisma.$queryRaw<Array<{ id: bigint; scored_model_version: string; scored_margin: number }>>`
            SELECT id, scored_model_version, scored_margin FROM samples WHERE device_id = ${device} AND state = 'pending' ORDER BY scored_margin, id`);
        expect((await queue()).slice(0, 3).map((r) => r.id)).toEqual([ids[0], ids[2], ids[3]]);

        // The hub's evaluation rows of the backbone (clear apples, clear milk): without them no version is releasable, and only releasable ones re-score.
        const evalRows = rowsOf(['apples', 'milk'], [...Array.from({ length: 10 }, () => ({ label: 'apples', x: [1, 0] })), ...Array.from({ length: 10 }, () => ({ label: 'milk', x: [0, 1] }))]);
        expect((await postEvaluationRows(sut.hub.httpUrl, backbone, evalRows)).status).toBe(201);
        const version = `rescorer-${tag}`;
        expect((await postArchive(sut.hub.httpUrl, await tinyArchive({ version, labels: ['apples', 'milk'], kernel: [[6, 0], [0, 6]], backboneId: backbone }))).status).toBe(201);
        const done = await eventually(async () => {
          const m = await model(version);
          return m.rescore.state === 'done' ? m : undefined;
        }, 30_000, 're-score done');
        expect(done.rescore.samples).toBe(19);
        const after = await queue();
        expect(after.every((r) => r.scored_model_version === version)).toBe(true);
        // The ambiguous (odd) samples now lead the least-margin order; the clear ones dropped down.
        const odd = new Set(ids.filter((_, i) => i % 2 === 1).map(String));
        expect(after.slice(0, 9).every((r) => odd.has(String(r.id)))).toBe(true);
        expect(after.slice(9).every((r) => !odd.has(String(r.id)) && r.scored_margin > 0.9)).toBe(true);
        const labelled = await prisma.$queryRaw<Array<{ scored_model_version: string }>>`SELECT scored_model_version FROM samples WHERE id = ${ids[1]}`;
        expect(labelled[0]?.scored_model_version).toBe('device-v0');

        // A version registered outside the hub's app (as a training worker does) is queued, and the hub claims its re-score.
        // It leans to apples (bias): the same on the clear evaluation rows, so releasable, but the ambiguous samples turn apples.
        const worker = createModelRegistry({ prisma, blobs: sut.hub.app.get<BlobStore>(BLOB_STORE), gate: { gateMaxOverallDrop: 0.02, gateMaxCategoryDrop: 0.05, gateMinEvalRows: 10 } });
        const leaning = `rescorer-leaning-${tag}`;
        const { trainingRows: _none, ...files } = await unpackArtifact(await tinyArchive({ version: leaning, labels: ['apples', 'milk'], kernel: [[6, 0], [0, 6]], bias: [2, 0], backboneId: backbone }));
        const registered = await worker.register({ files, source: 'job', registeredBy: 'job:test', lineage: { jobId: 'test', sampleIds: ['1', '2'] } });
        expect(registered.model).toMatchObject({ source: 'job', releasable: true, lineage: { jobId: 'test', sampleIds: ['1', '2'] }, rescore: { state: 'queued' } });
        await eventually(async () => ((await model(leaning)).rescore.state === 'done' ? true : undefined), 30_000, 'worker version re-scored');
        const ambiguous = await prisma.$queryRaw<Array<{ scored_category: string; scored_model_version: string }>>`
          SELECT scored_category, scored_model_version FROM samples WHERE id = ${ids[3]}`;
        expect(ambiguous[0]).toEqual({ scored_category: 'apples', scored_model_version: leaning });

        // A version the gate refuses never re-scores the backlog.
        const wrong = `rescorer-wrong-${tag}`;
        const { trainingRows: _no, ...wrongFiles } = await unpackArtifact(await tinyArchive({ version: wrong, labels: ['apples', 'milk'], kernel: [[0, 6], [6, 0]], backboneId: backbone }));
        const refused = await worker.register({ files: wrongFiles, source: 'job', registeredBy: 'job:test' });
        expect(refused.model).toMatchObject({ releasable: false, rescore: { state: null } });
        expect(refused.model.gateReason).toMatch(new RegExp(`^not releasable: regresses against ${leaning}: overall 1\\.00→0\\.00 \\(n=20, p<0\\.001\\); apples 1\\.00→0\\.00 \\(n=10, p<0\\.001\\); milk 1\\.00→0\\.00 \\(n=10, p<0\\.001\\)$`));
      });
    });
  });
}
