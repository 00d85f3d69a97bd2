import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { encodeTrainingRows, type TrainingJobView, type TrainingRows } from '@shelfsight/contracts';
import type { CategoryJudgement } from '@shelfsight/hub';
import type { DatabaseKind } from './support/databases';
import { rowsOf, tinyArchive, type TinyHeadInput } from './support/model-artifacts';
import { hasExternalPostgres } from './support/services';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from './support/test-hub';

/**
 * The release gate cannot be walked around (issue 17, part 1), on a real hub with a real
 * training worker: versions are scored on the hub's own rows (held-out labelled samples,
 * operators' evaluation rows) beside their parent, category by category, with a paired test.
 */
const BACKBONE = 'nsfw-mobilenet-v2';
const DIM = 1280;
const db: DatabaseKind = hasExternalPostgres() ? 'postgres' : 'pglite';

interface Model {
  version: string;
  releasable: boolean | null;
  gateReason: string;
  override: { by: string; reason: string; at: string } | null;
  gate: { reference: string | null; categories: CategoryJudgement[]; regressed: string[]; unverified: string[]; overridable: boolean };
  declared: { note: string; metrics: Record<string, unknown>; trainingRows?: number; splits?: Record<string, number> } | null;
  metrics: { rows: number; heldOutSamples?: number };
  rescore: { state: string | null };
}

/** A 1280-d embedding "hot" on every third dimension from `hot` (as a device would send for one product). */
function embedding(hot: number, i: number): number[] {
  return Array.from({ length: DIM }, (_, k) => (k % 3 === hot ? 1 : 0.05) + ((i * 31 + k) % 7) * 0.01);
}

/** A head reading the hot dimensions: label j answers embeddings hot on `hots[j]`. */
function hotHead(version: string, labels: string[], hots: number[], extra: Partial<TinyHeadInput> = {}): TinyHeadInput {
  return { version, labels, kernel: Array.from({ length: DIM }, (_, k) => hots.map((h) => (k % 3 === h ? 0.02 : 0))), backboneId: BACKBONE, ...extra };
}

describe(`model gate on the hub's own rows (${db})`, () => {
  let sut: TestHub;
  const tag = randomBytes(3).toString('hex');
  const api = (path: string) => `${sut.hub.httpUrl}${path}`;
  const model = async (version: string) => (await getJson<Model>(api(`/models/${encodeURIComponent(version)}`))).body;
  const upload = async (archive: Buffer, query = '') => {
    const res = await hubFetch(api(`/models${query}`), { method: 'POST', headers: { 'Content-Type': 'application/x-tar' }, body: new Uint8Array(archive) });
    expect(res.status).toBe(201);
    return (await res.json()) as Model;
  };
  const sql = async <T>(text: string, params: unknown[] = []): Promise<T[]> => {
    const c = new Client(sut.db.url);
    await c.connect();
    try {
      return (await c.query(text, params)).rows as T[];
    } finally {
      await c.end();
    }
  };
  /** Operator-labelled samples (as agents send them and operators label them); half are held out for evaluation by hash. */
  const labelSamples = async (label: string, hot: number, n: number, device = `dev-${tag}`) => {
    for (let i = 0; i < n; i++) {
      const v = Buffer.alloc(DIM * 4);
      embedding(hot, i).forEach((x, k) => v.writeFloatLE(x, k * 4));
      await sql(
        `INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
          predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
          scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, state, label, labelled_by, labelled_at)
         VALUES ($1, $2, 'low_confidence', $2, 's', 'A', 'A-01-1-A', now(), $3, 0.4, '[]', 'v0', $4, $5, $6, $7, 1, 1, 1,
          $3, 0.4, 0.1, 1, '[]', 'v0', 'labelled', $3, 'key:test', now())`,
        [device, `${label}-${hot}-${i}-${randomBytes(3).toString('hex')}`, label, BACKBONE, v, DIM, 'a'.repeat(64)],
      );
    }
  };
  const runJob = async (body: unknown): Promise<TrainingJobView> => {
    const res = await hubFetch(api('/training-jobs'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as TrainingJobView;
    return eventually(async () => {
      const j = (await getJson<TrainingJobView>(api(`/training-jobs/${id}`))).body;
      return j.status === 'done' || j.status === 'failed' ? j : undefined;
    }, 180_000, `training job ${id}`);
  };

  beforeAll(async () => {
    sut = await startTestHub(db, 'aedes', { TRAINING_WORKER: 'child', GATE_MIN_EVAL_ROWS: '20', GATE_ALPHA: '0.05', GATE_MAX_CATEGORY_DROP: '0.05', EVAL_HOLDOUT_PERCENT: '50' });
  }, 120_000);
  afterAll(async () => {
    await sut?.stop();
  });

  describe('a job whose labels add a category', () => {
    let v0: string;

    it('scores the fleet version on held-out labelled samples (half of them, by hash), never on its uploader\'s rows', async () => {
      await labelSamples('apples', 0, 60);
      await labelSamples('milk', 1, 60);
      v0 = `v0-${tag}`;
      const own = rowsOf(['apples', 'milk'], [...Array.from({ length: 20 }, (_, i) => ({ label: 'apples', x: embedding(0, i) })), ...Array.from({ length: 20 }, (_, i) => ({ label: 'milk', x: embedding(1, i) }))]);
      const m = await upload(await tinyArchive(hotHead(v0, ['apples', 'milk'], [0, 1]), own));
      expect(m.releasable).toBe(true);
      expect(m.gate.reference).toBeNull();
      const held = m.metrics.heldOutSamples ?? 0;
      expect(held).toBeGreaterThan(35); // ~60 of 120
      expect(held).toBeLessThan(85);
      expect(m.metrics.rows).toBe(held);
      expect(m.declared?.trainingRows).toBe(40);
    });

    it('refuses it when wrong labels damage a shared category, naming the category with before, after and n', async () => {
      await labelSamples('kefir', 2, 60);
      await labelSamples('apples', 1, 150, `dev-mislabels-${tag}`); // milk photos labelled apples
      const job = await runJob({ base: { version: v0 }, backbone: BACKBONE, augmentFromThumbnails: false, head: { type: 'softmax', epochs: 20 } });
      expect(job.error).toBeNull();
      const result = job.result as { version: string; releasable: boolean; gateReason: string; heldOutForEvaluation: number; sampleRows: number };
      expect(result.heldOutForEvaluation).toBeGreaterThan(120); // ~165 of 330: never trained on
      expect(result.sampleRows + result.heldOutForEvaluation).toBe(330);
      const m = await model(result.version);
      expect(m.gate.reference).toBe(v0);
      expect(m.releasable).toBe(false);
      expect(m.gate.overridable).toBe(false);
      const milk = m.gate.categories.find((c) => c.category === 'milk')!;
      expect(milk).toMatchObject({ status: 'regressed', before: 1 });
      expect(milk.after).toBeLessThan(0.5);
      expect(milk.n).toBeGreaterThanOrEqual(20);
      expect(m.gateReason).toContain(`regresses against ${v0}`);
      expect(m.gateReason).toMatch(new RegExp(`milk 1\\.00→${milk.after.toFixed(2).replace('.', '\\.')} \\(n=${milk.n}, p<0\\.001\\)`));
      expect(m.gate.categories.find((c) => c.category === 'kefir')).toMatchObject({ status: 'new', before: null });
      // Not releasable: its backlog re-score never runs.
      expect(m.rescore.state).toBeNull();
      expect(job.result).toMatchObject({ releasable: false, gateReason: m.gateReason });
    }, 240_000);

    it('releases the same new category once the labels are right', async () => {
      await sql(`DELETE FROM samples WHERE device_id = $1`, [`dev-mislabels-${tag}`]);
      const job = await runJob({ base: { version: v0 }, backbone: BACKBONE, augmentFromThumbnails: false, head: { type: 'softmax', epochs: 20 } });
      expect(job.error).toBeNull();
      const m = await model((job.result as { version: string }).version);
      expect(m.gate.reference).toBe(v0);
      expect(m.gate.categories.map((c) => [c.category, c.status])).toEqual([['apples', 'passed'], ['kefir', 'new'], ['milk', 'passed']]);
      expect(m.releasable).toBe(true);
      expect(m.gateReason).toMatch(new RegExp(`^no regression against ${v0} on 2 shared categories .*; new: kefir 1\\.00 \\(n=\\d+\\)$`));
    }, 240_000);
  });

  describe('few evaluation rows, overrides and uploads', () => {
    const backbone = `gate-tiny-${tag}`;
    const v = (name: string) => `${name}-${tag}`;
    // Features [apples, cream, juice, unused]; labels apples, cream, juice.
    const LABELS = ['apples', 'cream', 'juice'];
    const GOOD = { kernel: [[5, 0, 0], [0, 5, 0], [0, 0, 5], [0, 0, 0]] };
    const CREAM_TO_JUICE = { kernel: [[5, 0, 0], [0, 0, 5], [0, 0, 5], [0, 0, 0]] };
    const APPLES_TO_JUICE = { kernel: [[0, 0, 5], [0, 5, 0], [0, 0, 5], [0, 0, 0]] };

    it('an admin adds evaluation rows for a backbone; a category with fewer than the minimum is unverified', async () => {
      const rows: TrainingRows = rowsOf(LABELS, [
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'apples', x: [1, 0, 0, 0], id: `image:apples-${i}.jpg` })),
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'juice', x: [0, 0, 1, 0], id: `image:juice-${i}.jpg` })),
        ...Array.from({ length: 3 }, (_, i) => ({ label: 'cream', x: [0, 1, 0, 0], id: `image:cream-${i}.jpg` })),
      ]);
      const res = await hubFetch(api(`/models/evaluation-rows?backbone=${backbone}`), { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(encodeTrainingRows(rows)) });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ backbone, rows: 83, counts: { apples: 40, cream: 3, juice: 40 } });

      const first = await upload(await tinyArchive({ version: v('good'), labels: LABELS, backboneId: backbone, ...GOOD }));
      expect(first.releasable).toBe(false);
      expect(first.gate).toMatchObject({ reference: null, unverified: ['cream'], regressed: [], overridable: true });
      expect(first.gateReason).toBe(
        "not releasable: unverified (fewer than 20 evaluation rows; releasable only by an operator's override with a written reason): cream 1.00 (n=3)",
      );
    });

    it('an operator releases it with a written reason: stored, shown, audited; a reason-less override is refused', async () => {
      const short = await hubFetch(api(`/models/${v('good')}/override`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'ok' }) });
      expect(short.status).toBe(400);
      const reason = 'cream has 3 evaluation rows; checked 30 cream frames by hand on store 12';
      const res = await hubFetch(api(`/models/${v('good')}/override`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason }) });
      expect(res.status).toBe(200);
      const m = (await res.json()) as Model;
      expect(m.releasable).toBe(true);
      expect(m.override).toMatchObject({ by: 'key:bootstrap', reason });
      expect(m.gateReason).toMatch(/^released by key:bootstrap's override \(unverified: cream\)/);
      const list = (await getJson<Model[]>(api(`/models?backbone=${backbone}`))).body;
      expect(list.find((x) => x.version === v('good'))?.override?.reason).toBe(reason);
      const audit = await eventually(async () => {
        const page = (await getJson<{ items: Array<{ route: string; params: Record<string, string>; reason: string | null; status: number }> }>(api('/audit?route=/models/&limit=100'))).body;
        return page.items.find((e) => e.params.version === v('good') && e.route === '/models/:version/override' && e.status === 200);
      }, 10_000, 'override audited');
      expect(audit.reason).toBe(`gate override: ${reason}`);
      // Released: its backlog re-score is queued.
      expect((await model(v('good'))).rescore.state).not.toBeNull();
    });

    it('a collapse of the thin category is unverified, not passed; a collapse of a well-covered one is a regression no override releases', async () => {
      const thin = await upload(await tinyArchive({ version: v('cream-collapse'), labels: LABELS, backboneId: backbone, parent: v('good'), ...CREAM_TO_JUICE }));
      expect(thin.releasable).toBe(false);
      expect(thin.gate).toMatchObject({ reference: v('good'), unverified: ['cream'], regressed: [], overridable: true });
      expect(thin.gateReason).toContain('cream 1.00→0.00 (n=3, p=0.125)');
      expect(thin.rescore.state).toBeNull();

      const wide = await upload(await tinyArchive({ version: v('apples-collapse'), labels: LABELS, backboneId: backbone, parent: v('good'), ...APPLES_TO_JUICE }));
      expect(wide.releasable).toBe(false);
      expect(wide.gate.regressed).toContain('apples');
      expect(wide.gateReason).toContain(`regresses against ${v('good')}`);
      expect(wide.gateReason).toContain('apples 1.00→0.00 (n=40, p<0.001)');
      const refused = await hubFetch(api(`/models/${v('apples-collapse')}/override`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'I am sure it is fine, really' }) });
      expect(refused.status).toBe(409);
      expect((await model(v('apples-collapse'))).releasable).toBe(false);
    });

    it("an upload's own metrics, splits and rows do not make it releasable and never become evaluation rows", async () => {
      const fresh = `gate-declared-${tag}`;
      // Rows the head gets all right, half of them "testing" (split 2), and a manifest claiming perfect accuracy.
      const own = rowsOf(LABELS, [
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'apples', x: [1, 0, 0, 0], split: (i % 2 ? 2 : 0) as 0 | 2, id: `image:a${i}.jpg` })),
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'cream', x: [0, 1, 0, 0], split: (i % 2 ? 2 : 0) as 0 | 2, id: `image:c${i}.jpg` })),
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'juice', x: [0, 0, 1, 0], split: (i % 2 ? 2 : 0) as 0 | 2, id: `image:j${i}.jpg` })),
      ]);
      const archive = await tinyArchive({ version: v('self-declared'), labels: LABELS, backboneId: fresh, ...GOOD }, own);
      const m = await upload(archive);
      expect(m.releasable).toBe(false);
      expect(m.gate.unverified).toEqual(LABELS);
      expect(m.metrics.rows).toBe(0);
      expect(m.declared).toMatchObject({ trainingRows: 120, splits: { training: 60, validation: 0, testing: 60 } });
      expect(m.declared?.note).toMatch(/informational, never used by the gate/);
      expect(await sql(`SELECT category_set FROM evaluation_sets WHERE backbone_id = $1`, [fresh])).toEqual([]);
      // Re-uploaded under another version with the same claims: still nothing to score it on.
      const again = await upload(await tinyArchive({ version: v('self-declared-2'), labels: LABELS, backboneId: fresh, parent: v('self-declared'), ...GOOD }, own));
      expect(again.releasable).toBe(false);
      expect(again.gate.reference).toBeNull();
    });
  });
});
