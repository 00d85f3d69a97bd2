import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '@shelfsight/cli';
import { getJson, hubFetch, startTestHub, TEST_ADMIN_KEY, type TestHub } from '../support/test-hub';

/**
 * The Admin screen in headless Chromium against a real hub: an admin hands out a viewer key
 * (shown once), provisions a device (its password and the trusted-keys file shown once),
 * revokes it and reads the audit log; the viewer signed in with that key is not offered
 * operator or admin actions, and the same key forged into operator requests is refused.
 */
const SCREENSHOTS = join(__dirname, '..', '..', 'docs', 'screenshots');

describe('console Admin screen (Chromium, real hub)', () => {
  jest.setTimeout(120_000);
  let sut: TestHub;
  let browser: Browser;
  let page: Page;
  const run = randomBytes(3).toString('hex');
  let viewerKey = '';

  const signIn = async (key: string) => {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('role').waitFor();
  };
  const nav = () => page.locator('header nav a');

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    sut = await startTestHub('pglite', 'aedes');
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await sut?.stop();
  });

  it('lets an admin create a viewer key that is shown once, and lists it without its secret', async () => {
    await page.goto(`${sut.hub.httpUrl}/`);
    await signIn(TEST_ADMIN_KEY);
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.locator('input[name=key-name]').fill(`viewer ${run}`);
    await page.locator('select[name=key-role]').selectOption('viewer');
    await page.getByRole('button', { name: 'Create key' }).click();
    viewerKey = (await page.getByTestId('new-key').textContent())!.trim();
    expect(viewerKey).toMatch(/^shk_[0-9a-f]{16}_/);
    const id = viewerKey.split('_')[1]!;

    // The hub agrees: the key works and is a viewer.
    expect((await getJson<{ role: string }>(`${sut.hub.httpUrl}/auth/me`, viewerKey)).body.role).toBe('viewer');
    const row = page.locator(`[data-testid=api-keys] tr[data-key-id="${id}"]`);
    await row.filter({ hasText: `viewer ${run}` }).waitFor();
    expect(await row.textContent()).toContain('active');

    // Once dismissed, the secret is nowhere on the page.
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await page.getByTestId('new-key').waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(viewerKey);
    await page.screenshot({ path: join(SCREENSHOTS, 'admin.png'), fullPage: true });
  });

  it('provisions a device with its password and the trusted keys shown once, and revokes it after a confirmation', async () => {
    const deviceId = `adm-${run}-1`;
    await page.getByRole('tab', { name: 'Devices' }).click();
    await page.locator('input[name=device-id]').fill(deviceId);
    await page.getByRole('button', { name: 'Provision device' }).click();
    const password = (await page.getByTestId('device-password').textContent())!.trim();
    expect(password.length).toBeGreaterThanOrEqual(24);
    const trusted = await (await hubFetch(`${sut.hub.httpUrl}/rollouts/trusted-keys`)).text();
    expect(trusted.trim().length).toBeGreaterThan(0);
    expect((await page.getByTestId('trusted-keys').textContent())!.trim()).toBe(trusted.trim());
    const row = page.locator(`[data-testid=admin-devices] tr[data-device-id="${deviceId}"]`);
    await row.getByTestId('credential-state').filter({ hasText: 'enabled' }).waitFor();

    // Revoke asks first; cancelling changes nothing.
    await row.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog', { name: `Revoke device ${deviceId}?` });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await getJson<{ enabled: boolean }>(`${sut.hub.httpUrl}/devices/${deviceId}/credentials`)).body.enabled).toBe(true);
    await row.getByRole('button', { name: 'Revoke' }).click();
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await row.getByTestId('credential-state').filter({ hasText: 'revoked' }).waitFor();
    expect((await getJson<{ enabled: boolean }>(`${sut.hub.httpUrl}/devices/${deviceId}/credentials`)).body.enabled).toBe(false);
  });

  it('shows the audit log of those actions, filtered by route', async () => {
    await page.getByRole('tab', { name: 'Audit log' }).click();
    const log = page.getByTestId('audit-log');
    await log.locator('tr', { hasText: 'POST /api-keys' }).first().waitFor();
    await log.locator('tr', { hasText: 'DELETE /devices/:id/credentials' }).first().waitFor();
    await page.locator('input[name=route]').fill('/devices');
    await log.locator('tr', { hasText: 'POST /api-keys' }).first().waitFor({ state: 'detached' });
    const rows = await log.locator('tbody tr').allTextContents();
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const r of rows) expect(r).toContain('/devices/:id/credentials');
  });

  it('does not offer a viewer operator or admin actions, and refuses them when forged with its key', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(viewerKey);
    expect(await page.getByTestId('role').textContent()).toContain('viewer');
    const links = await nav().allTextContents();
    expect(links).toContain('Inventory');
    for (const hidden of ['Admin', 'Rollouts', 'Labelling', 'Training', 'Models']) expect(links).not.toContain(hidden);

    // Typing an operator screen's address does not open it either.
    await page.goto(`${sut.hub.httpUrl}/#/rollouts`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    expect(await page.getByRole('button', { name: 'New rollout' }).count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Rollouts' }).count()).toBe(0);
    await page.goto(`${sut.hub.httpUrl}/#/admin`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    expect(await page.getByRole('button', { name: 'Create key' }).count()).toBe(0);
    expect(await page.locator('button', { hasText: /^(Label|Skip|Start training|Start rollout)/ }).count()).toBe(0);

    // The page's own key, sent by hand to operator and admin routes: the hub refuses.
    const statuses = await page.evaluate(async () => {
      const key = (globalThis as unknown as { sessionStorage: { getItem(k: string): string } }).sessionStorage.getItem('shelfsight.apiKey');
      const send = async (path: string, body: unknown) =>
        (await fetch(path, { method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).status;
      return {
        training: await send('training-jobs', {}),
        rollout: await send('rollouts', { modelVersion: 'v1', target: { all: true }, stages: [{ percent: 100 }] }),
        key: await send('api-keys', { name: 'escalate', role: 'admin' }),
      };
    });
    expect(statuses).toEqual({ training: 403, rollout: 403, key: 403 });
    // ... and records the denials.
    const audit = await getJson<{ items: Array<{ status: number; reason: string | null; actor: string }> }>(`${sut.hub.httpUrl}/audit?actor=key:${viewerKey.split('_')[1]}`);
    expect(audit.body.items.some((e) => e.status === 403 && e.reason === 'role')).toBe(true);
  });
});
