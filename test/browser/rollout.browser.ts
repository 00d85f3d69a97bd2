import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '@shelfsight/cli';
import { decodeTrainingRows, packArtifact } from '@shelfsight/contracts';
import { spawnAgent, type AgentProcess } from '../support/agent-process';
import { postEvaluationRows } from '../support/model-artifacts';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from '../support/test-hub';
import { rollOutInTwoStages, rolloutAgentArgs } from './rollout-steps';

/**
 * The rollout part of the operator's day, in headless Chromium against a real hub and two
 * real `shelf agent` processes classifying JPEG shelf photos: an operator rolls a new
 * registered version out in two stages from the Rollouts screen and watches the stages
 * advance live (no reload); afterwards the agents' detections carry the new version.
 */
const SCREENSHOTS = join(__dirname, '..', '..', 'docs', 'screenshots');

describe('console Rollouts screen (Chromium, real hub and agents)', () => {
  jest.setTimeout(240_000);
  let sut: TestHub;
  let browser: Browser;
  let page: Page;
  let feeder: NodeJS.Timeout | undefined;
  const agents: AgentProcess[] = [];
  const run = randomBytes(3).toString('hex');
  const site = `ro-${run}`;
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-rollout-'));
  const demoModel = process.env.SHELFSIGHT_TEST_DEMO_MODEL!;
  const demoFrames = join(demoModel, '..', 'demo-frames');
  const devices = [1, 2].map((n) => `${site}-robot-${n}`);
  const newVersion = `v-${run}-canary`;
  let operatorKey = '';

  /** Register an artifact folder (with its training rows, so the gate evaluates it) under `version`. */
  const register = async (version: string | undefined) => {
    const manifest = JSON.parse(readFileSync(join(demoModel, 'manifest.json'), 'utf8')) as { version: string; lineage?: { parent: string } };
    const original = manifest.version;
    if (version) Object.assign(manifest, { version, createdAt: new Date().toISOString(), lineage: { parent: original } });
    const tar = await packArtifact({
      manifest: Buffer.from(JSON.stringify(manifest, null, 2)),
      weights: readFileSync(join(demoModel, 'head.bin')),
      labels: readFileSync(join(demoModel, 'labels.txt')),
      trainingRows: readFileSync(join(demoModel, 'training-rows.bin')),
    });
    const res = await hubFetch(`${sut.hub.httpUrl}/models`, { method: 'POST', body: tar, headers: { 'Content-Type': 'application/gzip' } });
    expect([200, 201]).toContain(res.status);
    return (await res.json()) as { version: string; releasable: boolean | null; gateReason: string | null };
  };

  /** Keep giving each agent new shelf photos (they shadow the candidate on their next frames). */
  let frameNo = 0;
  const feed = () => {
    const photos = readdirSync(demoFrames).filter((f) => f.endsWith('.jpg'));
    for (const [i, id] of devices.entries()) {
      const photo = photos[(frameNo + i * 7) % photos.length]!;
      const name = `f-${String(frameNo).padStart(5, '0')}`;
      const dir = join(work, id, 'frames');
      copyFileSync(join(demoFrames, photo), join(dir, `${name}.jpg`));
      writeFileSync(join(dir, `${name}.json`), JSON.stringify({ location: `A-0${i + 1}-1-${'ABCD'[frameNo % 4]}`, capturedAt: new Date().toISOString() }));
    }
    frameNo++;
  };

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    // The demo model's testing rows (8 a category) become the hub's evaluation rows (an admin's act): uploads are scored on them.
    sut = await startTestHub('pglite', 'aedes', { ROLLOUT_TICK_MS: '250', GATE_MIN_EVAL_ROWS: '8' });
    const demoManifest = JSON.parse(readFileSync(join(demoModel, 'manifest.json'), 'utf8')) as { backbone: { id: string } };
    const seeded = await postEvaluationRows(sut.hub.httpUrl, demoManifest.backbone.id, decodeTrainingRows(readFileSync(join(demoModel, 'training-rows.bin'))), { testingOnly: true, apiKey: sut.apiKey });
    if (seeded.status !== 201) throw new Error(`evaluation rows refused: ${JSON.stringify(seeded.body)}`);
    const res = await hubFetch(`${sut.hub.httpUrl}/api-keys`, { method: 'POST', body: JSON.stringify({ name: `rollout operator ${run}`, role: 'operator' }), headers: { 'Content-Type': 'application/json' } });
    operatorKey = ((await res.json()) as { key: string }).key;

    // The version the agents run, then a newer one of the same backbone and categories.
    const base = await register(undefined);
    const next = await register(newVersion);
    if (next.releasable !== true) throw new Error(`${newVersion} is not releasable: ${next.gateReason}`);

    for (const id of devices) {
      mkdirSync(join(work, id, 'frames'), { recursive: true });
      agents.push(
        spawnAgent({
          'device-id': id,
          site,
          'mqtt-url': sut.hub.mqttUrl,
          ...(await rolloutAgentArgs(sut, id, work)),
          'frames-dir': join(work, id, 'frames'),
          'state-dir': join(work, id, 'state'),
          model: demoModel,
          'poll-ms': 100,
          'settle-ms': 0,
          'heartbeat-ms': 1000,
        }),
      );
    }
    feed();
    let seenDevices: unknown;
    await eventually(
      async () => {
        const { body } = await getJson<Array<{ id: string; online: boolean; modelVersion: string | null }>>(`${sut.hub.httpUrl}/devices`);
        seenDevices = body;
        return devices.every((id) => body.some((d) => d.id === id && d.online && d.modelVersion === base.version)) ? true : undefined;
      },
      90_000,
      'both agents online on the base version',
    ).catch((err: Error) => {
      throw new Error(`${err.message}; devices ${JSON.stringify(seenDevices)}; agent output:\n${agents.map((a) => a.output().slice(-2000)).join('\n---\n')}`);
    });
    feeder = setInterval(feed, 400);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  });

  afterAll(async () => {
    if (feeder) clearInterval(feeder);
    for (const a of agents) await a.kill();
    await browser?.close();
    await sut?.stop();
  });

  it('rolls a new version out in two stages to real agents, the stages advancing live on the page', async () => {
    await page.goto(`${sut.hub.httpUrl}/`);
    await page.getByLabel('API key').fill(operatorKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await rollOutInTwoStages(page, sut, { version: newVersion, deviceIds: devices, site, screenshots: SCREENSHOTS });
  });
});
