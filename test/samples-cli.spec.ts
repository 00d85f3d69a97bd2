import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '@shelfsight/vision';
import { SHELF_BIN } from '@shelfsight/cli';
import { FakeDevice } from './support/fake-device';
import { registerTestBackbone, sampleMessage } from './support/samples';
import { eventually, getJson, startTestHub, type TestHub } from './support/test-hub';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `shelf …` as an operator would (async: the hub answers from this same process). */
function shelf(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SHELF_BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('shelf samples / shelf categories against a real hub', () => {
  jest.setTimeout(180_000);
  let sut: TestHub;
  let device: FakeDevice;
  let tmp: string;
  const site = `cli-${randomBytes(3).toString('hex')}`;
  const hub = () => ['--hub-url', sut.hub.httpUrl];

  beforeAll(async () => {
    sut = await startTestHub('pglite', 'aedes');
    await registerTestBackbone(sut.hub.databaseUrl, 'test-backbone');
    device = await FakeDevice.connect(sut.hub.mqttUrl, `cli-dev-${randomBytes(3).toString('hex')}`);
    for (let i = 0; i < 4; i++) await device.sendRaw('samples', JSON.stringify(await sampleMessage(device.id, { site })));
    await eventually(async () => {
      const r = await getJson<{ items: unknown[] }>(`${sut.hub.httpUrl}/samples?site=${site}`);
      return r.body.items.length === 4 ? true : undefined;
    });
    tmp = mkdtempSync(join(tmpdir(), 'shelf-samples-cli-'));
  });
  afterAll(async () => {
    await device?.close();
    await sut?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('manages categories, lists and labels samples (one, and from a CSV), and exports a dataset shelf train reads', async () => {
    for (const name of ['milk', 'juice', 'old-line']) expect((await shelf(['categories', 'add', name, ...hub()])).code).toBe(0);
    expect(JSON.parse((await shelf(['categories', 'retire', 'old-line', ...hub()])).stdout)).toMatchObject({ name: 'old-line', active: false });
    const listed = await shelf(['categories', 'list', ...hub()]);
    expect(listed.stdout).toMatch(/^old-line\s+retired/m);
    expect(listed.stdout).toMatch(/^milk\s+active/m);

    const list = await shelf(['samples', 'list', '--site', site, '--json', 'true', ...hub()]);
    expect(list.code).toBe(0);
    const ids = list.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toHaveLength(4);
    const table = await shelf(['samples', 'list', '--site', site, ...hub()]);
    expect(table.stdout.split('\n')[0]).toMatch(/^id\s+state\s+category/);

    expect(JSON.parse((await shelf(['samples', 'label', ids[0]!, 'milk', ...hub()])).stdout)).toEqual({ id: ids[0], state: 'labelled', label: 'milk' });
    const retired = await shelf(['samples', 'label', ids[1]!, 'old-line', ...hub()]);
    expect(retired.code).toBe(1);
    expect(retired.stderr).toMatch(/HTTP 400 category: old-line is retired/);

    const csv = join(tmp, 'labels.csv');
    writeFileSync(csv, `id,category\n${ids[1]},juice\n${ids[2]},juice\n${ids[3]},milk\n`);
    // The API key travels from the environment as X-API-Key (not enforced by this hub).
    const bulk = await shelf(['samples', 'label', '--csv', csv, ...hub()], { HUB_API_KEY: 'k'.repeat(20) });
    expect(JSON.parse(bulk.stdout)).toEqual({ labelled: 3, missing: 0, categories: 2 });

    const folders = join(tmp, 'folders');
    const exported = await shelf(['samples', 'export', '--out', folders, ...hub()]);
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout.trim().split('\n').pop()!)).toMatchObject({ images: 4, labels: { juice: 2, milk: 2 } });
    expect(readdirSync(join(folders, 'milk'))).toHaveLength(2);
    const fromFolders = await loadDataset(folders);
    expect(fromFolders.labels).toEqual(['juice', 'milk']);
    expect(fromFolders.images).toHaveLength(4);

    const csvOut = join(tmp, 'csv');
    const exportedCsv = JSON.parse((await shelf(['samples', 'export', '--out', csvOut, '--format', 'csv', ...hub()])).stdout.trim().split('\n').pop()!) as { data: string };
    const fromCsv = await loadDataset(exportedCsv.data);
    expect(fromCsv.labels).toEqual(['juice', 'milk']);
    expect(fromCsv.images.map((i) => i.label).sort()).toEqual(['juice', 'juice', 'milk', 'milk']);
    // shelf's own reader of training data takes the export as it is.
    const split = await shelf(['dataset', 'split', '--data', folders]);
    expect(split.code).toBe(0);
  });
});
