/**
 * Run as its own process (`node -r ./bin/register.js test/support/hub-tensorflow-probe.ts`):
 * start a hub on an embedded database, register a model over HTTP, then print — as the
 * last line, one JSON object — which @tensorflow modules the process has loaded.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHubConfig, startHub } from '@shelfsight/hub';
import { postArchive, REGISTRY_TEST_KEY, rowsOf, tinyArchive } from './model-artifacts';

async function main(): Promise<void> {
  const hub = await startHub(
    loadHubConfig({}, { HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_HOST: '127.0.0.1', DATA_DIR: mkdtempSync(join(tmpdir(), 'shelfsight-probe-')), HUB_API_KEY: REGISTRY_TEST_KEY }),
    { logLevels: false },
  );
  try {
    const labels = ['apples', 'milk'];
    const rows = rowsOf(labels, [
      { label: 'apples', x: [1, 0], split: 2 },
      { label: 'milk', x: [0, 1], split: 2 },
      { label: 'apples', x: [0.9, 0.1] },
    ]);
    const res = await postArchive(hub.httpUrl, await tinyArchive({ version: 'probe-v1', labels, kernel: [[4, 0], [0, 4]] }, rows));
    const tensorflow = Object.keys(require.cache).filter((k) => k.includes('@tensorflow'));
    process.stdout.write(JSON.stringify({ status: res.status, releasable: res.body.releasable, modules: Object.keys(require.cache).length, tensorflow }) + '\n');
  } finally {
    await hub.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
