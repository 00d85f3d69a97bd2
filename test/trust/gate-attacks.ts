import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { encodeTrainingRows, type TrainingJobView } from '@shelfsight/contracts';
import { rowsOf, tinyArchive, type TinyHeadInput } from '../support/model-artifacts';
import { eventually, hubFetch, type TestHub } from '../support/test-hub';
import type { FleetAttackResult } from './fleet-attacks';

/**
 * The registry half of the trust harness: wrong labels on one category reach a real
 * training job on the hub's worker, and a head collapsing a category that has few
 * evaluation rows is uploaded. Neither may become releasable; every attack version that
 * did is counted in `released_regressions`.
 */

interface Model {
  version: string;
  releasable: boolean | null;
  gateReason: string;
  gate: { reference: string | null; regressed: string[]; unverified: string[]; overridable: boolean };
  rescore: { state: string | null };
}

const BACKBONE = 'nsfw-mobilenet-v2';
const DIM = 1280;
/** A 1280-d embedding "hot" on every third dimension from `hot`, as a device would send for one product. */
const embedding = (hot: number, i: number) => Array.from({ length: DIM }, (_, k) => (k % 3 === hot ? 1 : 0.05) + ((i * 31 + k) % 7) * 0.01);
/** A head reading the hot dimensions: label j answers embeddings hot on `hots[j]`. */
const hotHead = (version: string, labels: string[], hots: number[], extra: Partial<TinyHeadInput> = {}): TinyHeadInput => ({
  version,
  labels,
  kernel: Array.from({ length: DIM }, (_, k) => hots.map((h) => (k % 3 === h ? 0.02 : 0))),
  backboneId: BACKBONE,
  ...extra,
});

export async function gateAttacks(sut: TestHub, log: (m: string) => void, counters: { released_regressions: number }, report: (r: FleetAttackResult) => void): Promise<void> {
  const url = sut.hub.httpUrl;
  const tag = randomBytes(3).toString('hex');
  const model = async (version: string) => (await (await hubFetch(`${url}/models/${encodeURIComponent(version)}`)).json()) as Model;
  const upload = async (archive: Buffer) => {
    const res = await hubFetch(`${url}/models`, { method: 'POST', headers: { 'Content-Type': 'application/x-tar' }, body: new Uint8Array(archive) });
    if (res.status !== 201) throw new Error(`POST /models: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as Model;
  };
  const db = new Client(sut.db.url);
  await db.connect();
  /** Operator-labelled samples as agents send them and operators label them (a share is held out for evaluation by hash). */
  const labelSamples = async (label: string, hot: number, n: number, device: string) => {
    for (let i = 0; i < n; i++) {
      const v = Buffer.alloc(DIM * 4);
      embedding(hot, i).forEach((x, k) => v.writeFloatLE(x, k * 4));
      await db.query(
        `INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
          predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
          scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, state, label, labelled_by, labelled_at)
         VALUES ($1, $2, 'low_confidence', $2, 's', 'A', 'A-01-1-A', now(), $3, 0.4, '[]', 'v0', $4, $5, $6, $7, 1, 1, 1,
          $3, 0.4, 0.1, 1, '[]', 'v0', 'labelled', $3, 'key:trust', now())`,
        [device, `${label}-${hot}-${i}-${randomBytes(3).toString('hex')}`, label, BACKBONE, v, DIM, 'a'.repeat(64)],
      );
    }
  };
  try {
    // --- Wrong labels on one category, through a real training job.
    {
      const name = 'wrong labels on one category (milk photos labelled apples) through a training job';
      log(`gate: ${name}`);
      await labelSamples('apples', 0, 60, `trust-dev-${tag}`);
      await labelSamples('milk', 1, 60, `trust-dev-${tag}`);
      const v0 = `trust-v0-${tag}`;
      const own = rowsOf(['apples', 'milk'], [...Array.from({ length: 20 }, (_, i) => ({ label: 'apples', x: embedding(0, i) })), ...Array.from({ length: 20 }, (_, i) => ({ label: 'milk', x: embedding(1, i) }))]);
      const first = await upload(await tinyArchive(hotHead(v0, ['apples', 'milk'], [0, 1]), own));
      await labelSamples('apples', 1, 150, `trust-mislabeller-${tag}`);
      const created = await hubFetch(`${url}/training-jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ base: { version: v0 }, backbone: BACKBONE, augmentFromThumbnails: false, head: { type: 'softmax', epochs: 20 } }),
      });
      const { id } = (await created.json()) as TrainingJobView;
      const job = await eventually(async () => {
        const j = (await (await hubFetch(`${url}/training-jobs/${id}`)).json()) as TrainingJobView;
        return j.status === 'done' || j.status === 'failed' ? j : undefined;
      }, 150_000, `training job ${id}`);
      const version = (job.result as { version?: string } | null)?.version;
      const m = version ? await model(version) : undefined;
      if (m?.releasable) counters.released_regressions += 1;
      report({
        name,
        refused: first.releasable === true && job.status === 'done' && m?.releasable === false && m.gate.regressed.includes('milk'),
        outcome: `base ${v0} releasable=${first.releasable}; job ${id} ${job.status}${job.error ? ` (${job.error})` : ''}; ${version ?? 'no version'} releasable=${m?.releasable}: ${m?.gateReason.slice(0, 160) ?? ''}`,
      });
    }

    // --- A collapse of a category with few evaluation rows.
    {
      const name = 'collapse of a category with few evaluation rows (cream: 3 rows)';
      log(`gate: ${name}`);
      const backbone = `trust-tiny-${tag}`;
      const LABELS = ['apples', 'cream', 'juice'];
      const rows = rowsOf(LABELS, [
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'apples', x: [1, 0, 0, 0], id: `image:apples-${i}.jpg` })),
        ...Array.from({ length: 40 }, (_, i) => ({ label: 'juice', x: [0, 0, 1, 0], id: `image:juice-${i}.jpg` })),
        ...Array.from({ length: 3 }, (_, i) => ({ label: 'cream', x: [0, 1, 0, 0], id: `image:cream-${i}.jpg` })),
      ]);
      const evalRes = await hubFetch(`${url}/models/evaluation-rows?backbone=${backbone}`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(encodeTrainingRows(rows)) });
      if (evalRes.status !== 201) throw new Error(`POST /models/evaluation-rows: HTTP ${evalRes.status}`);
      const good = `trust-good-${tag}`;
      await upload(await tinyArchive({ version: good, labels: LABELS, backboneId: backbone, kernel: [[5, 0, 0], [0, 5, 0], [0, 0, 5], [0, 0, 0]] }));
      // An operator releases the good head knowingly (cream is thin): the collapse is judged against it.
      await hubFetch(`${url}/models/${good}/override`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'trust harness: cream has 3 evaluation rows, checked by hand' }) });
      const collapse = await upload(await tinyArchive({ version: `trust-cream-collapse-${tag}`, labels: LABELS, backboneId: backbone, parent: good, kernel: [[5, 0, 0], [0, 0, 5], [0, 0, 5], [0, 0, 0]] }));
      if (collapse.releasable) counters.released_regressions += 1;
      report({
        name,
        refused: collapse.releasable === false && collapse.gate.unverified.includes('cream') && collapse.rescore.state === null,
        outcome: `releasable=${collapse.releasable}, unverified ${collapse.gate.unverified.join(',') || 'none'}, backlog re-score ${collapse.rescore.state ?? 'not run'}: ${collapse.gateReason.slice(0, 160)}`,
      });
    }
  } finally {
    await db.end();
  }
}
