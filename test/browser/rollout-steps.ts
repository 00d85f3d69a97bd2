import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { eventually, getJson, hubFetch, type TestHub } from '../support/test-hub';

/**
 * The rollout steps of the browser scenarios (rollout.browser.ts, and the rollout part of
 * operator-loop.browser.ts): agents that take rollouts, and an operator rolling a version out
 * in two stages on the Rollouts screen while watching the stages advance live.
 */

/**
 * The `shelf agent` arguments a device needs to take rollouts from `sut`: its credential
 * (provisioned now; artifacts are downloaded with it), the hub's trusted keys (written to
 * `dir/trusted-keys`), the hub's HTTP URL, and a short shadow run.
 */
export async function rolloutAgentArgs(sut: TestHub, deviceId: string, dir: string): Promise<Record<string, string | number>> {
  const trustedKeys = join(dir, 'trusted-keys');
  writeFileSync(trustedKeys, await (await hubFetch(`${sut.hub.httpUrl}/rollouts/trusted-keys`)).text());
  const res = await hubFetch(`${sut.hub.httpUrl}/devices/${deviceId}/credentials`, { method: 'POST' });
  if (res.status !== 201) throw new Error(`provisioning ${deviceId}: HTTP ${res.status}`);
  const cred = (await res.json()) as { username: string; password: string };
  return {
    'mqtt-username': cred.username,
    'mqtt-password': cred.password,
    'trusted-keys': trustedKeys,
    'hub-http-url': sut.hub.httpUrl,
    'shadow-frames': 2,
  };
}

/**
 * On `page` (signed in as an operator), on the Rollouts screen: start a rollout of `version`
 * to `deviceIds` in two stages (50% then 100%, no soak) with the default shadow gate and
 * health watch, or the gate off for the operator's reason `gateOff`; `shadowFrames` if given.
 */
export async function startTwoStageRollout(page: Page, opts: { version: string; deviceIds: string[]; shadowFrames?: number; gateOff?: string }): Promise<void> {
  const { version, deviceIds } = opts;
  await page.getByRole('link', { name: 'Rollouts' }).click();
  await page.getByRole('button', { name: 'New rollout' }).click();
  const form = page.getByRole('form', { name: 'Create rollout' });
  await form.locator(`select[name=modelVersion] option[value="${version}"]`).waitFor({ state: 'attached' });
  await form.locator('select[name=modelVersion]').selectOption(version);
  await form.locator('select[name=targetKind]').selectOption('deviceIds');
  await form.locator('input[name=targetValues]').fill(deviceIds.join(', '));
  await form.getByLabel('stage 1 percent').fill('50');
  await form.getByLabel('stage 1 minSoakSeconds').fill('0');
  await form.getByLabel('stage 2 minSoakSeconds').fill('0');
  if (opts.shadowFrames !== undefined) await form.locator('input[name=shadowFrames]').fill(String(opts.shadowFrames));
  if (opts.gateOff) {
    await form.getByLabel('turn the shadow gate off').check();
    await form.locator('input[name=overrideReason]').fill(opts.gateOff);
  } else expect(await form.getByLabel('turn the shadow gate off').isChecked()).toBe(false);
  await form.getByRole('button', { name: 'Start rollout' }).click();
}

/**
 * On `page` (signed in as an operator): create a rollout of `version` to `deviceIds` in two
 * stages (50% then 100%, no soak) on the Rollouts screen, then watch, without reloading,
 * stage 1 run and pass, stage 2 pass and the rollout complete with every device active; then
 * wait until the agents' detections carry `version`. The agents must be classifying frames
 * meanwhile (they shadow the candidate on their next ones). The rollout has the default
 * shadow gate and health watch unless `gateOff` gives the operator's reason to turn the gate
 * off (a head meant to change what the devices see); the page shows the predicted inventory
 * change either way.
 */
export async function rollOutInTwoStages(page: Page, sut: TestHub, opts: { version: string; deviceIds: string[]; site: string; gateOff?: string; screenshots?: string }): Promise<void> {
  const { version, deviceIds } = opts;
  await startTwoStageRollout(page, opts);

  // The detail page: stage 1 runs with the canary, stage 2 waits; then both pass, live.
  await page.getByTestId('rollout-state').waitFor();
  const stage = (n: number, state?: string) => page.locator(`[data-testid=rollout-stages] tr[data-stage="${n}"]${state ? `[data-state=${state}]` : ''}`);
  expect(await stage(1).getAttribute('data-state')).toBe('running');
  expect(await stage(2).getAttribute('data-state')).toBe('pending');
  await stage(1, 'passed').waitFor({ timeout: 120_000 });
  await page.getByTestId('rollout-state').filter({ hasText: 'completed' }).waitFor({ timeout: 120_000 });
  expect(await stage(2).getAttribute('data-state')).toBe('passed');
  for (const id of deviceIds) await page.locator(`[data-testid=rollout-devices] tr[data-device-id="${id}"][data-state=active]`).waitFor();
  // The policy as applied, and the predicted inventory change the devices' shadow runs add up to.
  const gate = await page.getByTestId('policy-gate').textContent();
  if (opts.gateOff) {
    expect(gate).toBe('off');
    expect(await page.getByTestId('policy-override').textContent()).toContain(opts.gateOff);
  } else expect(gate).toContain('predicted change ≤');
  await page.getByTestId('predicted-share').waitFor();
  // (docs/screenshots/rollout.png is a halted rollout: rollout-halt.browser.ts.)

  // The hub agrees, and the agents now classify with the new version.
  const rollouts = (await getJson<Array<{ state: string; modelVersion: string; stages: Array<{ state: string; devices: number }> }>>(`${sut.hub.httpUrl}/rollouts`)).body;
  const done = rollouts.find((r) => r.modelVersion === version);
  expect(done?.state).toBe('completed');
  expect(done?.stages.map((s) => s.state)).toEqual(['passed', 'passed']);
  await eventually(
    async () => {
      const { body } = await getJson<{ items: Array<{ deviceId: string; modelVersion: string }> }>(`${sut.hub.httpUrl}/detections?site=${opts.site}&limit=500`);
      return deviceIds.every((id) => body.items.some((d) => d.deviceId === id && d.modelVersion === version)) ? true : undefined;
    },
    60_000,
    `detections with ${version} from every agent`,
  );

  // The list shows it too.
  await page.getByRole('link', { name: '← Rollouts' }).click();
  await page.locator('[data-testid=rollouts] tr', { hasText: version }).filter({ hasText: 'completed' }).waitFor();
  if (opts.screenshots) await page.screenshot({ path: join(opts.screenshots, 'rollouts.png'), fullPage: true });
}
