/**
 * Run by test/training-replicas.spec.ts as its own process: start a hub (with its worker
 * child) on DATABASE_URL, serve a training job through the REST API until it is done, then
 * print which TensorFlow modules this (the hub's) process loaded — there must be none.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHubConfig, startHub } from '../../apps/hub/src';

async function main(): Promise<void> {
  const hub = await startHub(
    loadHubConfig({}, { ...process.env, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_HOST: '127.0.0.1', DATA_DIR: mkdtempSync(join(tmpdir(), 'shelfsight-probe-')), TRAINING_WORKER: 'child' }),
    { logLevels: false },
  );
  let status = 'none';
  try {
    const res = await fetch(`${hub.httpUrl}/training-jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: process.env.PROBE_JOB });
    const { id } = (await res.json()) as { id: number };
    for (let i = 0; i < 1200 && (status === 'none' || status === 'queued' || status === 'running'); i++) {
      await new Promise((r) => setTimeout(r, 250));
      status = ((await (await fetch(`${hub.httpUrl}/training-jobs/${id}`)).json()) as { status: string }).status;
      await fetch(`${hub.httpUrl}/training-jobs`);
    }
  } finally {
    await hub.stop();
  }
  const tf = Object.keys(require.cache).filter((p) => p.includes('@tensorflow'));
  process.stdout.write(JSON.stringify({ status, tensorflowModules: tf.length, examples: tf.slice(0, 3) }) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
