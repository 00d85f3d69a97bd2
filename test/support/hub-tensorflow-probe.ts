/**
 * The one probe of "the hub process loads no TensorFlow", run as its own process
 * (`node -r ./bin/register.js test/support/hub-tensorflow-probe.ts`): start a hub, exercise
 * it over HTTP, then print — as the last line, one JSON object — what happened (`status`)
 * and which @tensorflow modules the process has loaded (`tensorflow`, `tensorflowModules`).
 * Two scenarios:
 * - by default (test/hub-no-tensorflow.spec.ts): an embedded database; register a model
 *   (`status` is the HTTP status, `releasable` the gate's verdict);
 * - with PROBE_JOB, a training job's JSON body (test/training-replicas.spec.ts): the hub on
 *   DATABASE_URL with its worker child serves that job until it ends (`status` is the
 *   job's final status).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHubConfig, startHub, type HubHandle } from '@shelfsight/hub';
import { postArchive, postEvaluationRows, REGISTRY_TEST_KEY, rowsOf, tinyArchive } from './model-artifacts';

interface Outcome {
  status: number | string;
  releasable?: boolean;
}

async function registerModel(hub: HubHandle): Promise<Outcome> {
  const labels = ['apples', 'milk'];
  const rows = rowsOf(labels, [
    { label: 'apples', x: [1, 0], split: 2 },
    { label: 'milk', x: [0, 1], split: 2 },
    { label: 'apples', x: [0.9, 0.1] },
  ]);
  // The gate scores uploads on the hub's own rows: an admin gives it some first (GATE_MIN_EVAL_ROWS=1 below).
  const seeded = await postEvaluationRows(hub.httpUrl, 'tiny-backbone', rows, { testingOnly: true });
  if (seeded.status !== 201) return { status: `evaluation rows: ${seeded.status}` };
  const res = await postArchive(hub.httpUrl, await tinyArchive({ version: 'probe-v1', labels, kernel: [[4, 0], [0, 4]] }, rows));
  return { status: res.status, releasable: res.body.releasable === true };
}

async function serveJob(hub: HubHandle, job: string, apiKey: string): Promise<Outcome> {
  const headers = { 'X-API-Key': apiKey };
  const res = await fetch(`${hub.httpUrl}/training-jobs`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: job });
  const { id } = (await res.json()) as { id: number };
  let status = 'none';
  for (let i = 0; i < 1200 && (status === 'none' || status === 'queued' || status === 'running'); i++) {
    await new Promise((r) => setTimeout(r, 250));
    status = ((await (await fetch(`${hub.httpUrl}/training-jobs/${id}`, { headers })).json()) as { status: string }).status;
    await fetch(`${hub.httpUrl}/training-jobs`, { headers });
  }
  return { status };
}

async function main(): Promise<void> {
  const job = process.env.PROBE_JOB;
  const apiKey = job ? (process.env.HUB_API_KEY ?? '') : REGISTRY_TEST_KEY;
  const env: Record<string, string | undefined> = {
    ...(job ? process.env : {}),
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    MQTT_PORT: '0',
    MQTT_HOST: '127.0.0.1',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'shelfsight-probe-')),
    HUB_API_KEY: apiKey,
    ...(job ? { TRAINING_WORKER: 'child' } : { GATE_MIN_EVAL_ROWS: '1' }),
  };
  const hub = await startHub(loadHubConfig({}, env), { logLevels: false });
  let outcome: Outcome;
  try {
    outcome = job ? await serveJob(hub, job, apiKey) : await registerModel(hub);
  } finally {
    await hub.stop();
  }
  const tensorflow = Object.keys(require.cache).filter((k) => k.includes('@tensorflow'));
  process.stdout.write(JSON.stringify({ ...outcome, modules: Object.keys(require.cache).length, tensorflow, tensorflowModules: tensorflow.length }) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
