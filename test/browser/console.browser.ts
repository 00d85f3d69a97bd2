import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '@shelfsight/cli';
import { renderShelfPhoto, type DemoCategory } from '@shelfsight/vision';
import { spawnAgent, type AgentProcess } from '../support/agent-process';
import { getJson, hubFetch, startTestHub, type TestHub } from '../support/test-hub';

/**
 * The console in headless Chromium against a real hub (PGlite, embedded broker) and two real
 * `shelf agent` processes classifying JPEG shelf photos with the demo model. Saves the main
 * screens to docs/screenshots/ (the README shows them).
 */
const SCREENSHOTS = join(__dirname, '..', '..', 'docs', 'screenshots');

interface Frame {
  name: string;
  location: string;
  category: DemoCategory;
}
// Agent 1 photographs aisle A (chilled), agent 2 aisle B (fruit).
const AISLE_A: Frame[] = [
  { name: 'a1', location: 'A-01-1-A', category: 'milk' },
  { name: 'a2', location: 'A-01-1-B', category: 'milk' },
  { name: 'a3', location: 'A-01-2-A', category: 'juice' },
];
const AISLE_B: Frame[] = [
  { name: 'b1', location: 'B-01-1-A', category: 'apples' },
  { name: 'b2', location: 'B-01-1-B', category: 'apples' },
  { name: 'b3', location: 'B-01-2-A', category: 'bananas' },
];

async function writeFrames(dir: string, frames: Frame[], seedBase: number, hoursAgo: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  let i = 0;
  for (const f of frames) {
    const capturedAt = new Date(Date.now() - (hoursAgo - i * 0.2) * 3600_000).toISOString();
    writeFileSync(join(dir, `${f.name}.json`), JSON.stringify({ location: f.location, capturedAt }));
    writeFileSync(join(dir, `${f.name}.jpg`), await renderShelfPhoto(f.category, seedBase + i++));
  }
}

describe('web console (Chromium, real hub and agents)', () => {
  jest.setTimeout(240_000);
  let sut: TestHub;
  let browser: Browser;
  let page: Page;
  const agents: AgentProcess[] = [];
  const site = `web-${randomBytes(3).toString('hex')}`;
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-console-'));
  const keys: Record<'viewer' | 'operator', string> = { viewer: '', operator: '' };

  const agentArgs = (n: number) => ({
    'device-id': `${site}-robot-${n}`,
    site,
    'mqtt-url': sut.hub.mqttUrl,
    'frames-dir': join(work, `agent-${n}`, 'frames'),
    'state-dir': join(work, `agent-${n}`, 'state'),
    model: process.env.SHELFSIGHT_TEST_DEMO_MODEL!,
    'poll-ms': 100,
    'settle-ms': 0,
    'heartbeat-ms': 1000,
  });
  const count = (category: string) => page.locator(`[data-testid=inventory-counts] tr[data-category=${category}] td.num`);
  const signIn = async (key: string) => {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await writeFrames(join(work, 'agent-1', 'frames'), AISLE_A, 700_000, 2);
    await writeFrames(join(work, 'agent-2', 'frames'), AISLE_B, 710_000, 1.5);
    sut = await startTestHub('pglite', 'aedes');
    for (const role of ['viewer', 'operator'] as const) {
      const res = await hubFetch(`${sut.hub.httpUrl}/api-keys`, { method: 'POST', body: JSON.stringify({ name: `console ${role}`, role }), headers: { 'Content-Type': 'application/json' } });
      keys[role] = ((await res.json()) as { key: string }).key;
    }
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    for (const a of agents) await a.kill();
    await browser?.close();
    await sut?.stop();
  });

  it('asks for a key, then shows a manager counts appearing live as agents classify frames, by zone, with the history chart', async () => {
    await page.goto(`${sut.hub.httpUrl}/`);
    await page.getByLabel('API key').waitFor();
    await signIn(keys.viewer);
    await page.locator('input[name=site]').fill(site);
    await page.getByText('No counts yet').waitFor();

    // The agents start after the page is open: the counts arrive through the live events.
    agents.push(spawnAgent(agentArgs(1)), spawnAgent(agentArgs(2)));
    for (const [category, n] of [['milk', '2'], ['juice', '1'], ['apples', '2'], ['bananas', '1']] as const) {
      await count(category).filter({ hasText: n }).waitFor({ timeout: 120_000 });
    }
    expect(await page.getByTestId('total-locations').textContent()).toBe('6');

    await page.locator('input[name=zone]').fill('A');
    await page.locator('[data-testid=inventory-counts] tr[data-category=apples]').waitFor({ state: 'detached' });
    expect(await page.getByTestId('total-locations').textContent()).toBe('3');
    expect(await count('milk').textContent()).toBe('2');

    // The history chart (uPlot) plots the categories of the range.
    await page.locator('input[name=zone]').fill('');
    const chart = page.getByTestId('history-chart');
    await chart.locator('canvas').waitFor();
    await chart.locator('.u-legend').filter({ hasText: 'bananas' }).waitFor();
    await page.getByRole('button', { name: '7d' }).click();
    await chart.locator('.u-legend').filter({ hasText: 'milk' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'inventory.png'), fullPage: true });
  });

  it('shows the fleet live: both agents online with their heartbeat numbers', async () => {
    await page.getByRole('link', { name: 'Fleet' }).click();
    for (const n of [1, 2]) {
      const row = page.locator(`[data-testid=fleet] tr[data-device=${site}-robot-${n}]`);
      await row.filter({ hasText: 'online' }).waitFor({ timeout: 30_000 });
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'fleet.png'), fullPage: true });
  });

  it('does not offer a viewer operator actions, and the hub refuses them when forged', async () => {
    await page.goto(`${sut.hub.httpUrl}/#/locations/${site}/A-01-1-A`);
    await page.getByTestId('location-state').filter({ hasText: 'milk' }).waitFor();
    await page.getByTestId('detections').locator('tbody tr').first().waitFor();
    expect(await page.locator('select[aria-label^="correct detection"]').count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Fleet' }).count()).toBe(1);

    const detections = (await getJson<{ items: Array<{ id: string }> }>(`${sut.hub.httpUrl}/detections?site=${site}&location=A-01-1-A`)).body.items;
    expect(detections.length).toBeGreaterThan(0);
    // The page's own key, sent by hand: the hub decides, not the page.
    const status = await page.evaluate(async (id) => {
      const key = (globalThis as unknown as { sessionStorage: { getItem(k: string): string } }).sessionStorage.getItem('shelfsight.apiKey');
      const res = await fetch(`detections/${id}/correction`, { method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/json' }, body: JSON.stringify({ category: 'juice' }) });
      return res.status;
    }, detections[0]!.id);
    expect(status).toBe(403);

    // An operator is offered the correction.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(keys.operator);
    await page.goto(`${sut.hub.httpUrl}/#/locations/${site}/A-01-1-A`);
    await page.locator('select[aria-label^="correct detection"]').first().waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'location.png'), fullPage: true });
    // The key lived in this tab's sessionStorage only.
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(await page.evaluate('document.cookie')).toBe('');
  });

  it('serves the API beside the page: health, docs and unknown paths unchanged', async () => {
    expect((await fetch(`${sut.hub.httpUrl}/health`)).status).toBe(200);
    expect((await fetch(`${sut.hub.httpUrl}/docs`)).status).toBe(200);
    const missing = await fetch(`${sut.hub.httpUrl}/no-such-thing`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/json/);
    expect((await fetch(`${sut.hub.httpUrl}/inventory`)).status).toBe(401);
    const page = await fetch(`${sut.hub.httpUrl}/`);
    expect(page.status).toBe(200);
    // Served over plain HTTP on a LAN address, the page must not be sent to https:// for its own scripts.
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(page.headers.get('content-security-policy')).not.toMatch(/upgrade-insecure-requests/);
  });
});
