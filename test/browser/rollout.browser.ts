import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '@shelfsight/cli';
import { packArtifact } from '@shelfsight/contracts';
import { spawnAgent, type AgentProcess } from '../support/agent-process';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from '../support/test-hub';

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
    sut = await startTestHub('pglite', 'aedes', { ROLLOUT_TICK_MS: '250' });
    const res = await hubFetch(`${sut.hub.httpUrl}/api-keys`, { method: 'POST', body: JSON.stringify({ name: `rollout operator ${run}`, role: 'operator' }), headers: { 'Content-Type': 'application/json' } });
    operatorKey = ((await res.json()) as { key: string }).key;

    // The version the agents run, then a newer one of the same backbone and categories.
    const base = await register(undefined);
    const next = await register(newVersion);
    expect(next.releasable).toBe(true);

    const trustedKeys = join(work, 'trusted-keys');
    writeFileSync(trustedKeys, await (await hubFetch(`${sut.hub.httpUrl}/rollouts/trusted-keys`)).text());
    for (const id of devices) {
      const cred = (await (await hubFetch(`${sut.hub.httpUrl}/devices/${id}/credentials`, { method: 'POST' })).json()) as { username: string; password: string };
      mkdirSync(join(work, id, 'frames'), { recursive: true });
      agents.push(
        spawnAgent({
          'device-id': id,
          site,
          'mqtt-url': sut.hub.mqttUrl,
          'mqtt-username': cred.username,
          'mqtt-password': cred.password,
          'trusted-keys': trustedKeys,
          'hub-http-url': sut.hub.httpUrl,
          'shadow-frames': 2,
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
    await page.getByRole('link', { name: 'Rollouts' }).click();
    await page.getByRole('button', { name: 'New rollout' }).click();

    const form = page.getByRole('form', { name: 'Create rollout' });
    await form.locator(`select[name=modelVersion] option[value="${newVersion}"]`).waitFor({ state: 'attached' });
    await form.locator('select[name=modelVersion]').selectOption(newVersion);
    await form.locator('select[name=targetKind]').selectOption('deviceIds');
    await form.locator('input[name=targetValues]').fill(devices.join(', '));
    await form.getByLabel('stage 1 percent').fill('50');
    await form.getByLabel('stage 1 minSoakSeconds').fill('0');
    await form.getByLabel('stage 2 minSoakSeconds').fill('0');
    await form.getByRole('button', { name: 'Start rollout' }).click();

    // The detail page: stage 1 runs with one device, stage 2 waits; then both pass, live.
    await page.getByTestId('rollout-state').waitFor();
    const stage = (n: number) => page.locator(`[data-testid=rollout-stages] tr[data-stage="${n}"]`);
    expect(await stage(1).getAttribute('data-state')).toBe('running');
    expect(await stage(2).getAttribute('data-state')).toBe('pending');
    const seen = new Set<string>();
    const poll = setInterval(() => void stage(1).getAttribute('data-state').then((s) => s && seen.add(`1:${s}`), () => undefined), 100);
    try {
      await page.locator('[data-testid=rollout-stages] tr[data-stage="1"][data-state=passed]').waitFor({ timeout: 120_000 });
      await page.locator('[data-testid=rollout-stages] tr[data-stage="2"][data-state=running]').or(page.locator('[data-testid=rollout-stages] tr[data-stage="2"][data-state=passed]')).first().waitFor();
      await page.getByTestId('rollout-state').filter({ hasText: 'completed' }).waitFor({ timeout: 120_000 });
    } finally {
      clearInterval(poll);
    }
    expect(seen.has('1:running')).toBe(true);
    for (const id of devices) {
      await page.locator(`[data-testid=rollout-devices] tr[data-device-id="${id}"][data-state=active]`).waitFor();
    }
    expect(await stage(2).getAttribute('data-state')).toBe('passed');
    await page.screenshot({ path: join(SCREENSHOTS, 'rollout.png'), fullPage: true });

    // The hub agrees, and the agents now classify with the new version.
    const rollouts = (await getJson<Array<{ id: string; state: string; modelVersion: string }>>(`${sut.hub.httpUrl}/rollouts`)).body;
    expect(rollouts.find((r) => r.modelVersion === newVersion)?.state).toBe('completed');
    await eventually(
      async () => {
        const { body } = await getJson<{ items: Array<{ deviceId: string; modelVersion: string }> }>(`${sut.hub.httpUrl}/detections?site=${site}&limit=200`);
        return devices.every((id) => body.items.some((d) => d.deviceId === id && d.modelVersion === newVersion)) ? true : undefined;
      },
      60_000,
      'detections with the new version from both agents',
    );

    // The list shows it too.
    await page.getByRole('link', { name: '← Rollouts' }).click();
    await page.locator('[data-testid=rollouts] tr', { hasText: newVersion }).filter({ hasText: 'completed' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'rollouts.png'), fullPage: true });
  });
});
