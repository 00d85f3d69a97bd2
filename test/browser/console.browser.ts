import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '@shelfsight/cli';
import { silentLogger } from '@shelfsight/common';
import { TRAIN_DEFAULTS, trainModel } from '@shelfsight/vision';
import { spawnAgent, type AgentProcess } from '../support/agent-process';
import { grocerySplits, type GroceryRow } from '../support/grocery';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from '../support/test-hub';
import { hasShared, REFERENCE_BACKBONE } from '../support/workspace-data';

/**
 * The console in headless Chromium against a real hub (PGlite, embedded broker) and two real
 * `shelf agent` processes classifying grocery-store photos (workspace data) with a head trained on
 * the reference backbone. Saves the main screens to docs/screenshots/ (the README shows them).
 */
const SCREENSHOTS = join(__dirname, '..', '..', 'docs', 'screenshots');
const run = hasShared() ? describe : describe.skip;

/** Agent 1 photographs aisle A, agent 2 aisle B: three locations each. */
const AISLE_A = ['A-01-1-A', 'A-01-1-B', 'A-01-2-A'];
const AISLE_B = ['B-01-1-A', 'B-01-1-B', 'B-01-2-A'];

/** Photos as the agent's frames folder takes them: the JPEG and a sidecar naming its location and capture time. */
function writeFrames(dir: string, photos: GroceryRow[], locations: string[], hoursAgo: number): void {
  mkdirSync(dir, { recursive: true });
  photos.forEach((photo, i) => {
    const capturedAt = new Date(Date.now() - (hoursAgo - i * 0.2) * 3600_000).toISOString();
    writeFileSync(join(dir, `f${i}.json`), JSON.stringify({ location: locations[i], capturedAt }));
    cpSync(photo.image, join(dir, `f${i}.jpg`));
  });
}

interface InventoryJson {
  categories: Array<{ category: string; locations: number }>;
  totalLocations?: number;
}

run('web console (Chromium, real hub and agents)', () => {
  jest.setTimeout(300_000);
  let sut: TestHub;
  let browser: Browser;
  let page: Page;
  let modelDir = '';
  let categories: string[] = [];
  /** Location → the category its photo shows. */
  const truth = new Map<string, string>();
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
    model: modelDir,
    'poll-ms': 100,
    'settle-ms': 0,
    'heartbeat-ms': 1000,
  });
  const count = (category: string) => page.locator(`[data-testid=inventory-counts] tr[data-category="${category}"] td.num`);
  const signIn = async (key: string) => {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  /** What the hub says the site holds (the page must show the same). */
  const inventory = async (zone?: string) =>
    (await getJson<InventoryJson>(`${sut.hub.httpUrl}/inventory?site=${site}${zone ? `&zone=${zone}` : ''}`)).body;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    // A head that knows four grocery categories well (25 training photos each); the agents get unseen validation photos of them.
    const { train, val, byLabel, largest } = await grocerySplits(work);
    categories = largest(3).slice(0, 4);
    const csv = (rows: GroceryRow[], name: string) => {
      const p = join(work, name);
      writeFileSync(p, 'image,label\n' + rows.map((r) => `${r.image},${r.label}`).join('\n') + '\n');
      return p;
    };
    modelDir = join(work, 'model');
    await trainModel({
      ...TRAIN_DEFAULTS,
      backbone: REFERENCE_BACKBONE,
      data: csv(categories.flatMap((l) => byLabel(train, l).slice(0, 25)), 'train.csv'),
      valData: csv(categories.flatMap((l) => byLabel(train, l).slice(25, 30)), 'val.csv'),
      out: modelDir,
      distortions: {},
      epochs: 20,
      logger: silentLogger,
    });
    const [c1, c2, c3, c4] = categories as [string, string, string, string];
    const photosA = [byLabel(val, c1)[0]!, byLabel(val, c1)[1]!, byLabel(val, c2)[0]!];
    const photosB = [byLabel(val, c3)[0]!, byLabel(val, c3)[1]!, byLabel(val, c4)[0]!];
    [...photosA, ...photosB].forEach((p, i) => truth.set([...AISLE_A, ...AISLE_B][i]!, p.label));
    writeFrames(join(work, 'agent-1', 'frames'), photosA, AISLE_A, 2);
    writeFrames(join(work, 'agent-2', 'frames'), photosB, AISLE_B, 1.5);
    // Every photo counts (four categories: the top one is above 0.25), so six locations fill whatever the head's confidence.
    sut = await startTestHub('pglite', 'aedes', { MIN_CONFIDENCE: '0.25' });
    for (const role of ['viewer', 'operator'] as const) {
      const res = await hubFetch(`${sut.hub.httpUrl}/api-keys`, { method: 'POST', body: JSON.stringify({ name: `console ${role}`, role }), headers: { 'Content-Type': 'application/json' } });
      keys[role] = ((await res.json()) as { key: string }).key;
    }
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, 300_000);

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
    await page.getByTestId('total-locations').filter({ hasText: /^6$/ }).waitFor({ timeout: 180_000 });
    // Whatever the head made of each photo, the page shows what the hub holds, category by category.
    const all = await eventually(async () => {
      const inv = await inventory();
      return inv.categories.reduce((n, c) => n + c.locations, 0) === 6 ? inv : undefined;
    }, 30_000, 'six locations in the inventory');
    for (const c of all.categories) await count(c.category).filter({ hasText: new RegExp(`^${c.locations}$`) }).waitFor();
    // Unseen photos of categories the head knows well: most locations hold what their photo shows.
    const held = (await getJson<{ items: Array<{ code: string; state: { category: string } | null }> }>(`${sut.hub.httpUrl}/locations?site=${site}`)).body.items;
    expect(held.filter((l) => l.state?.category === truth.get(l.code)).length).toBeGreaterThanOrEqual(4);

    await page.locator('input[name=zone]').fill('A');
    await page.getByTestId('total-locations').filter({ hasText: /^3$/ }).waitFor();
    const zoneA = await inventory('A');
    expect(zoneA.categories.reduce((n, c) => n + c.locations, 0)).toBe(3);
    for (const c of zoneA.categories) expect(await count(c.category).textContent()).toBe(String(c.locations));
    for (const c of all.categories.filter((x) => !zoneA.categories.some((a) => a.category === x.category))) {
      await page.locator(`[data-testid=inventory-counts] tr[data-category="${c.category}"]`).waitFor({ state: 'detached' });
    }

    // The history chart (uPlot) plots the categories of the range.
    await page.locator('input[name=zone]').fill('');
    const chart = page.getByTestId('history-chart');
    await chart.locator('canvas').waitFor();
    const shown = (await inventory()).categories.map((c) => c.category);
    await chart.locator('.u-legend').filter({ hasText: shown[0]! }).waitFor();
    await page.getByRole('button', { name: '7d' }).click();
    for (const category of shown) await chart.locator('.u-legend').filter({ hasText: category }).waitFor();
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
    const here = (await getJson<{ state: { category: string } | null }>(`${sut.hub.httpUrl}/locations/A-01-1-A?site=${site}`)).body.state;
    await page.goto(`${sut.hub.httpUrl}/#/locations/${site}/A-01-1-A`);
    await page.getByTestId('location-state').filter({ hasText: here!.category }).waitFor();
    await page.getByTestId('detections').locator('tbody tr').first().waitFor();
    expect(await page.locator('select[aria-label^="correct detection"]').count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Fleet' }).count()).toBe(1);

    const detections = (await getJson<{ items: Array<{ id: string }> }>(`${sut.hub.httpUrl}/detections?site=${site}&location=A-01-1-A`)).body.items;
    expect(detections.length).toBeGreaterThan(0);
    // The page's own key, sent by hand: the hub decides, not the page.
    const status = await page.evaluate(async ({ id, other }) => {
      const key = (globalThis as unknown as { sessionStorage: { getItem(k: string): string } }).sessionStorage.getItem('shelfsight.apiKey');
      const res = await fetch(`detections/${id}/correction`, { method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/json' }, body: JSON.stringify({ category: other }) });
      return res.status;
    }, { id: detections[0]!.id, other: categories.find((c) => c !== here!.category)! });
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
