/**
 * `npm run test:loop`: the learning loop end to end with real grocery photos and the
 * reference backbone (workspace data, through the vision test fixtures).
 *
 * 1. A head that barely knows two categories (one training photo each) is trained with
 *    `trainModel` (testing photos of all four categories, never trained on nor used to pick
 *    the epoch: the registry freezes them as the category set's evaluation set; separate
 *    validation photos pick the epoch) and registered on a real hub process (POST /models).
 * 2. Two real `shelf agent` processes classify unseen photos of those two categories; their
 *    unsure frames arrive at the hub as samples (thumbnail + embedding).
 * 3. The samples are labelled through the API and a retraining job (base: the first
 *    version's training rows, plus every labelled sample's stored embedding) registers a
 *    new version: it must classify held-out photos of the two categories at least 10 points
 *    better and be releasable.
 * 4. The same samples relabelled wrongly (the two categories swapped) give a version the
 *    gate refuses, with a reason naming both damaged categories.
 *
 * Exits non-zero on failure; the last stdout line is one JSON object.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger } from '@shelfsight/common';
import { encodeTrainingRows, TRAINING_ROWS_FILE, unpackArtifact, LABELS_FILE, MANIFEST_FILE, OUTPUTS_FILE, WEIGHTS_FILE } from '@shelfsight/contracts';
import { evaluateModel, readCsv, TRAIN_DEFAULTS, trainModel } from '@shelfsight/vision';
import { frameIdOf } from '@shelfsight/agent';
import { discoverEmbeddedUrl, freePort, spawnShelf, waitForHttp, SHELF_BIN } from '@shelfsight/cli';
import { GROCERY_DIR, hasShared, REFERENCE_BACKBONE } from '../support/workspace-data';

const WEAK_PER_CLASS = 1;
const AGENT_FRAMES_PER_CLASS = 60;
const VALIDATION_PER_CLASS = 6;
const started = Date.now();
const log = (m: string) => process.stderr.write(`loop: ${m}\n`);

interface Row {
  image: string;
  label: string;
}

async function main(): Promise<Record<string, unknown>> {
  if (!hasShared()) throw new Error(`workspace data missing (${GROCERY_DIR}, ${REFERENCE_BACKBONE})`);
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-loop-'));
  const keep = process.env.LOOP_KEEP === '1';
  try {
    // Grocery CSVs (image,label with absolute paths), coarse labels.
    await promisify(execFile)(process.execPath, [SHELF_BIN, 'dataset', 'grocery-store', '--root', GROCERY_DIR, '--out', join(work, 'grocery')]);
    const read = async (f: string): Promise<Row[]> => (await readCsv(join(work, 'grocery', f))).rows.map((r) => ({ image: r[0] as string, label: r[1] as string }));
    const train = await read('train.csv');
    const val = await read('val.csv');
    const byLabel = (rows: Row[], l: string) => rows.filter((r) => r.label === l);
    // Four categories with the most photos: two known well, two (the "weak" ones) barely.
    const counts = [...new Set(train.map((r) => r.label))].map((l) => ({ l, n: byLabel(train, l).length, v: byLabel(val, l).length })).filter((c) => c.v >= 6);
    counts.sort((a, b) => b.n - a.n || a.l.localeCompare(b.l));
    const [known1, known2, weak1, weak2] = counts.slice(0, 4).map((c) => c.l) as [string, string, string, string];
    const weak = [weak1, weak2];
    log(`categories: known ${known1}, ${known2}; weak ${weak1}, ${weak2}`);

    const csv = (rows: Row[], name: string) => {
      const p = join(work, name);
      writeFileSync(p, 'image,label\n' + rows.map((r) => `${r.image},${r.label}`).join('\n') + '\n');
      return p;
    };
    const baseTrain = [...byLabel(train, known1).slice(0, 40), ...byLabel(train, known2).slice(0, 40), ...weak.flatMap((l) => byLabel(train, l).slice(0, WEAK_PER_CLASS))];
    // Testing photos: half of val.txt per category (the registry's frozen evaluation set, which no
    // training sees); the other half is held out for before/after.
    const evalRows: Row[] = [];
    const heldOut: Row[] = [];
    for (const l of [known1, known2, ...weak]) {
      const v = byLabel(val, l);
      const half = Math.ceil(v.length / 2);
      evalRows.push(...v.slice(0, half));
      if (weak.includes(l)) heldOut.push(...v.slice(half));
    }
    const agentFrames = weak.flatMap((l) => byLabel(train, l).slice(WEAK_PER_CLASS, WEAK_PER_CLASS + AGENT_FRAMES_PER_CLASS));
    // Validation photos (the trainer picks its best epoch on them): training photos used nowhere else.
    const valRows = [
      ...[known1, known2].flatMap((l) => byLabel(train, l).slice(40, 40 + VALIDATION_PER_CLASS)),
      ...weak.flatMap((l) => byLabel(train, l).slice(WEAK_PER_CLASS + AGENT_FRAMES_PER_CLASS, WEAK_PER_CLASS + AGENT_FRAMES_PER_CLASS + VALIDATION_PER_CLASS)),
    ];

    log('training the first head (weak on two categories)');
    const v0Dir = join(work, 'v0');
    const v0 = await trainModel({
      ...TRAIN_DEFAULTS,
      backbone: REFERENCE_BACKBONE,
      data: csv(baseTrain, 'base.csv'),
      valData: csv(valRows, 'val.csv'),
      testData: csv(evalRows, 'eval.csv'),
      out: v0Dir,
      distortions: {},
      epochs: 30,
      logger: silentLogger,
    });
    writeFileSync(join(v0Dir, TRAINING_ROWS_FILE), encodeTrainingRows(v0.rows));

    // The hub: its own process, embedded PGlite and broker, a worker child for jobs.
    const httpPort = await freePort();
    const mqttPort = await freePort();
    const hubUrl = `http://127.0.0.1:${httpPort}`;
    // The operator's key; the agents connect to the open broker (device provisioning is tested in test/mqtt-auth.spec.ts).
    const apiKey = `loop-admin-${randomBytes(12).toString('hex')}`;
    const hub = spawnShelf(['hub'], {
      HUB_API_KEY: apiKey,
      MQTT_AUTH: 'off',
      DATA_DIR: join(work, 'hub'),
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(httpPort),
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: String(mqttPort),
      DATABASE_URL: '',
      MQTT_URL: '',
      TRAINING_WORKER: 'child',
      // The first version names the workspace's reference backbone: the one backbone folder its jobs may load.
      TRAINING_BACKBONE_ROOTS: dirname(REFERENCE_BACKBONE),
      // Every category has this many testing photos (the hub's evaluation rows below); held-out labelled samples add more.
      GATE_MIN_EVAL_ROWS: String(Math.min(...[known1, known2, ...weak].map((l) => evalRows.filter((r) => r.label === l).length))),
      // No held-out share of labelled samples here: step 4 relabels EVERY sample wrongly, the share
      // that would be held out included, and rows with the operator's wrong labels would then
      // vouch for the wrong version. A mislabelled batch is caught by rows it cannot touch (the
      // frozen testing photos); the held-out share itself is tested in test/model-gate.spec.ts.
      EVAL_HOLDOUT_PERCENT: '0',
    });
    const agents: Array<ReturnType<typeof spawnShelf>> = [];
    try {
      await waitForHttp(`${hubUrl}/health`, 180_000, () => (hub.child.exitCode !== null ? `hub exited: ${hub.stderr().slice(-2000)}` : undefined));
      await discoverEmbeddedUrl(hub.stdout() + hub.stderr()); // the hub is on its embedded database
      const api = async <T>(method: 'GET' | 'POST', path: string, body?: unknown, contentType = 'application/json'): Promise<T> => {
        const res = await fetch(`${hubUrl}${path}`, {
          method,
          headers: { 'X-API-Key': apiKey, ...(body !== undefined ? { 'content-type': contentType } : {}) },
          ...(body !== undefined ? { body: Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 500)}`);
        return (text ? JSON.parse(text) : undefined) as T;
      };
      // The testing photos' rows become the hub's evaluation rows (an admin's act): the gate never scores an upload on its own rows.
      const testing = [...v0.rows.split.keys()].filter((i) => v0.rows.split[i] === 2);
      const evaluation = {
        dim: v0.rows.dim,
        labels: v0.rows.labels,
        label: Uint32Array.from(testing.map((i) => v0.rows.label[i] as number)),
        split: new Uint8Array(testing.length).fill(2),
        x: Float32Array.from(testing.flatMap((i) => Array.from(v0.rows.x.subarray(i * v0.rows.dim, (i + 1) * v0.rows.dim)))),
        ...(v0.rows.ids ? { ids: testing.map((i) => v0.rows.ids![i] as string) } : {}),
      };
      await api('POST', `/models/evaluation-rows?backbone=${encodeURIComponent(v0.manifest.backbone.id)}`, encodeTrainingRows(evaluation), 'application/octet-stream');
      const register = await promisify(execFile)(process.execPath, [SHELF_BIN, 'models', 'register', v0Dir, '--hub-url', hubUrl, '--api-key', apiKey]).catch((e: Error & { stderr?: string }) => {
        throw new Error(`shelf models register failed: ${e.stderr ?? e.message}`);
      });
      const v0Version = v0.manifest.version;
      log(`registered ${v0Version}: ${register.stdout.trim().split('\n').pop()?.slice(0, 200)}`);

      // Two agents, each with half of the weak categories' unseen photos.
      const truth = new Map<string, string>();
      for (let a = 0; a < 2; a++) {
        const frames = join(work, `frames-${a}`);
        mkdirSync(frames, { recursive: true });
        agentFrames.filter((_, i) => i % 2 === a).forEach((r, i) => {
          const name = `A-0${a + 1}-${i + 1}-A_${i}.jpg`;
          cpSync(r.image, join(frames, name));
          truth.set(frameIdOf(name, readFileSync(r.image)), r.label);
        });
        agents.push(
          spawnShelf(
            [
              'agent',
              '--device-id', `loop-agent-${a}`,
              '--site', 'loop',
              '--mqtt-url', `mqtt://127.0.0.1:${mqttPort}`,
              '--frames-dir', frames,
              '--state-dir', join(work, `agent-state-${a}`),
              '--model', v0Dir,
              '--sample-min-confidence', '0.999',
              '--samples-per-minute', '1000',
              '--samples-per-day', '10000',
              '--poll-ms', '200',
            ],
            { LOG_LEVEL: 'warn' },
          ),
        );
      }
      interface SampleItem {
        id: string;
        frameId: string;
      }
      log(`waiting for ${agentFrames.length} samples from two agents`);
      let samples: SampleItem[] = [];
      const deadline = Date.now() + 300_000;
      while (samples.length < agentFrames.length) {
        if (Date.now() > deadline) throw new Error(`only ${samples.length} of ${agentFrames.length} samples arrived; agent log: ${agents.map((x) => x.stderr().slice(-1000)).join('\n')}`);
        for (const x of agents) if (x.child.exitCode !== null) throw new Error(`an agent exited: ${x.stderr().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 1000));
        samples = (await api<{ items: SampleItem[] }>('GET', '/samples?site=loop&state=pending&limit=500')).items;
      }
      const label = async (swap: boolean) => {
        for (const l of weak) {
          const target = swap ? (l === weak1 ? weak2 : weak1) : l;
          const ids = samples.filter((s) => truth.get(s.frameId) === l).map((s) => s.id);
          await api('POST', '/samples/labels', { ids, category: target });
        }
      };
      await label(false);
      log(`${samples.length} samples labelled through the API`);

      interface Job {
        id: number;
        status: string;
        error: string | null;
        resultVersion: string | null;
        createdAt: string;
        finishedAt: string | null;
      }
      const runJob = async (): Promise<Job> => {
        let job = await api<Job>('POST', '/training-jobs', { base: { version: v0Version }, head: { type: 'softmax', epochs: 30 } });
        while (job.status === 'queued' || job.status === 'running') {
          await new Promise((r) => setTimeout(r, 500));
          job = await api<Job>('GET', `/training-jobs/${job.id}`);
        }
        if (job.status !== 'done') throw new Error(`training job ${job.id} ${job.status}: ${job.error}`);
        return job;
      };
      interface Model {
        version: string;
        releasable: boolean | null;
        gateReason: string | null;
        gate: { reference: string | null; categories: Array<{ category: string; status: string }> } | null;
      }
      const good = await runJob();
      const retrainSeconds = (Date.parse(good.finishedAt as string) - Date.parse(good.createdAt)) / 1000;
      const v1 = await api<Model>('GET', `/models/${good.resultVersion}`);
      const v1Dir = join(work, 'v1');
      const archive = await unpackArtifact(Buffer.from(await (await fetch(`${hubUrl}/models/${good.resultVersion}/artifact`, { headers: { 'X-API-Key': apiKey } })).arrayBuffer()));
      mkdirSync(v1Dir, { recursive: true });
      writeFileSync(join(v1Dir, MANIFEST_FILE), archive.manifest);
      writeFileSync(join(v1Dir, WEIGHTS_FILE), archive.weights);
      writeFileSync(join(v1Dir, LABELS_FILE), archive.labels);
      if (archive.outputs) writeFileSync(join(v1Dir, OUTPUTS_FILE), archive.outputs);

      const heldOutCsv = csv(heldOut, 'held-out.csv');
      const accuracy = async (model: string) => (await evaluateModel({ model, data: heldOutCsv, split: 'all', topK: 1, out: join(work, `eval-${basename(model)}`), logger: silentLogger })).metrics.accuracy;
      const before = await accuracy(v0Dir);
      const after = await accuracy(v1Dir);
      log(`held-out ${weak.join('/')}: before ${(before * 100).toFixed(1)}%, after ${(after * 100).toFixed(1)}%; ${good.resultVersion} releasable=${v1.releasable} (${v1.gateReason})`);

      await label(true);
      const bad = await runJob();
      const v2 = await api<Model>('GET', `/models/${bad.resultVersion}`);
      const reason = v2.gateReason ?? '';
      // The damaged categories are those the gate found regressed against the reference (paired test
      // on the hub's rows): the reason must name every one of them with before→after, and at least
      // one must be a relabelled category.
      const damaged = (v2.gate?.categories ?? []).filter((c) => c.status === 'regressed').map((c) => c.category);
      const named = (c: string) => new RegExp(`[:;] ${c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\d\\.\\d\\d→`).test(reason);
      const badRefused = v2.releasable === false && damaged.some((c) => weak.includes(c)) && damaged.every(named);
      log(`wrong labels: ${bad.resultVersion} releasable=${v2.releasable} (${reason})`);

      const checks = {
        better_by_10_points: after - before >= 0.1,
        new_version_releasable: v1.releasable === true,
        bad_labels_refused: badRefused,
        damaged_categories: damaged,
      };
      const result = {
        ok: Object.values(checks).every(Boolean),
        checks,
        before_accuracy: +before.toFixed(4),
        after_accuracy: +after.toFixed(4),
        bad_labels_refused: badRefused,
        bad_labels_gate_reason: reason,
        retrain_seconds: +retrainSeconds.toFixed(1),
        weak_categories: weak,
        samples: samples.length,
        held_out_images: heldOut.length,
        versions: { first: v0Version, retrained: good.resultVersion, wrong_labels: bad.resultVersion },
        cpus: cpus().length,
        load_1m: +(loadavg()[0] ?? 0).toFixed(2),
        total_seconds: +((Date.now() - started) / 1000).toFixed(1),
      };
      return result;
    } finally {
      await Promise.all(agents.map((x) => x.stop()));
      await hub.stop();
    }
  } finally {
    if (!keep) rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(result.ok ? 0 : 1);
  },
  (err: unknown) => {
    process.stderr.write(`loop: FAILED ${(err as Error).stack ?? String(err)}\n`);
    process.stdout.write(JSON.stringify({ ok: false, error: (err as Error).message }) + '\n');
    process.exit(1);
  },
);
