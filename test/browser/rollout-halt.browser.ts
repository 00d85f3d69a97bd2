import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { silentLogger } from '@shelfsight/common';
import { agentConfig, StandInClassifier, startAgent, type AgentHandle } from '@shelfsight/agent';
import { launchChromium } from '@shelfsight/cli';
import { MILK_TO_YOGURT, quarterMilkFrame, seedStandInVersion } from '../support/flipped-head';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from '../support/test-hub';
import { startTwoStageRollout } from './rollout-steps';

/**
 * The rollout screen when the default shadow gate stops a head, in headless Chromium against a
 * real hub and four agents (stand-in heads, in process): the operator starts a rollout of a
 * head that would file every milk frame under yogurt, keeping the default gate, and watches
 * the predicted inventory change drawn, the canary stage halt on it and the canary devices
 * rolled back to their previous version. Saves docs/screenshots/rollout.png.
 */
const SCREENSHOTS = join(__dirname, '..', '..', 'docs', 'screenshots');

describe('console rollout screen: a halt on the predicted inventory change (Chromium, real hub and agents)', () => {
  jest.setTimeout(180_000);
  let sut: TestHub;
  let browser: Browser;
  let page: Page;
  let shelf: NodeJS.Timeout | undefined;
  const agents: AgentHandle[] = [];
  const run = randomBytes(3).toString('hex');
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-rollout-halt-'));
  const devices = [1, 2, 3, 4].map((n) => `halt-${run}-robot-${n}`);
  const version = `v-${run}-dairy`;
  let operatorKey = '';

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    sut = await startTestHub('pglite', 'aedes', { ROLLOUT_TICK_MS: '250' });
    const res = await hubFetch(`${sut.hub.httpUrl}/api-keys`, { method: 'POST', body: JSON.stringify({ name: `rollout operator ${run}`, role: 'operator' }), headers: { 'Content-Type': 'application/json' } });
    operatorKey = ((await res.json()) as { key: string }).key;
    await seedStandInVersion(sut, version, MILK_TO_YOGURT);

    const trustedKeys = join(work, 'trusted-keys');
    writeFileSync(trustedKeys, await (await hubFetch(`${sut.hub.httpUrl}/rollouts/trusted-keys`)).text());
    for (const id of devices) {
      const cred = await hubFetch(`${sut.hub.httpUrl}/devices/${id}/credentials`, { method: 'POST' });
      const { password } = (await cred.json()) as { password: string };
      const config = agentConfig({ deviceId: id, site: `halt-${run}`, mqttUrl: sut.hub.mqttUrl, mqttUsername: id, mqttPassword: password, stateDir: join(work, id), trustedKeys, hubHttpUrl: sut.hub.httpUrl, heartbeatMs: 500 });
      agents.push(await startAgent(config, { classifier: new StandInClassifier('stand-in-1'), logger: silentLogger }));
    }
    await eventually(
      async () => {
        const { body } = await getJson<Array<{ id: string; modelVersion: string | null }>>(`${sut.hub.httpUrl}/devices`);
        return devices.every((id) => body.some((d) => d.id === id && d.modelVersion === 'stand-in-1')) ? true : undefined;
      },
      30_000,
      'every agent known on stand-in-1',
    );
    // A shelf where a quarter of the frames are milk.
    let k = 0;
    shelf = setInterval(() => {
      k += 1;
      for (const a of agents) a.offer({ frameId: `h-${k}`, site: `halt-${run}`, location: 'A-01-1-A', capturedAt: new Date().toISOString(), image: quarterMilkFrame(k), source: 'test' });
    }, 50);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  });

  afterAll(async () => {
    if (shelf) clearInterval(shelf);
    for (const a of agents) await a.stop();
    await browser?.close();
    await sut?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('halts the canary stage on the predicted change, rolls the canary back, and shows both', async () => {
    await page.goto(`${sut.hub.httpUrl}/`);
    await page.getByLabel('API key').fill(operatorKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The gate and the health watch are left as they come: on, with the hub's defaults.
    await startTwoStageRollout(page, { version, deviceIds: devices, shadowFrames: 40 });

    // Live, without a reload: the canary stage halts on the predicted change, the canary goes back.
    await page.getByTestId('rollout-state').filter({ hasText: 'halted' }).waitFor({ timeout: 120_000 });
    await page.getByTestId('rollout-halt').filter({ hasText: /predicted inventory change milk → yogurt/ }).waitFor();
    expect(await page.getByTestId('policy-gate').textContent()).toContain('one pair ≤ 10%');
    await page.getByTestId('halt-rolled-back').filter({ hasText: /^[12] devices rolled back$/ }).waitFor({ timeout: 60_000 });
    await page.getByTestId('rollout-halt').filter({ hasText: 'none runs the halted version' }).waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-testid=rollout-stages] tr[data-stage="1"]').getAttribute('data-state')).toBe('halted');
    expect(await page.locator('[data-testid=rollout-stages] tr[data-stage="2"]').getAttribute('data-state')).toBe('pending');
    // The predicted change is drawn (uPlot's canvas), and named pair by pair.
    await page.locator('[data-testid=predicted-change-chart] canvas').waitFor();
    expect(await page.getByTestId('predicted-pairs').textContent()).toMatch(/milk → yogurt \d+\.\d% of \d+ frames \(\d+\) — 100\.0% of milk/);
    expect(await page.locator('[data-testid=rollout-stages] tr[data-stage="1"] [data-testid=stage-predicted-change]').textContent()).toContain('milk → yogurt');
    await page.screenshot({ path: join(SCREENSHOTS, 'rollout.png'), fullPage: true });

    // The hub agrees: the canary is back on the version it ran before; stage 2 was never offered.
    const { body: rollouts } = await getJson<Array<{ id: string; modelVersion: string }>>(`${sut.hub.httpUrl}/rollouts`);
    const id = rollouts.find((r) => r.modelVersion === version)!.id;
    const { body: view } = await getJson<{ haltAction: string; devices: Array<{ stage: number; state: string; activeVersion: string | null; offeredAt: string | null }> }>(`${sut.hub.httpUrl}/rollouts/${id}`);
    expect(view.haltAction).toBe('rollback');
    expect(view.devices.filter((d) => d.activeVersion === version)).toEqual([]);
    expect(view.devices.filter((d) => d.stage === 1).every((d) => d.offeredAt === null)).toBe(true);
    for (const a of agents) expect(a.heads.modelVersion).toBe('stand-in-1');
  });
});
