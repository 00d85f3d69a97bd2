import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Command } from 'commander';
import { cfg, loadConfig } from '@shelfsight/common';
import { consoleDistDir, loadHubConfig, startHub } from '@shelfsight/hub';
import { launchChromium } from '../bench/browser';
import { machineInfo } from '../bench/cpu';
import { spawnShelf } from '../bench/processes';
import { addConfigOptions, flagsFrom } from '../options';

const SPEC = {
  loads: { env: 'BENCH_LOADS', flag: 'loads', description: 'timed page loads (the median is reported)', schema: cfg.int(9, 1) },
  frames: { env: 'BENCH_FRAMES', flag: 'frames', description: 'simulated detections stored before the loads', schema: cfg.int(500, 1) },
} as const;

/**
 * `shelf bench console`: the web console's weight and speed. `js_gzip_kb` is all the
 * JavaScript of the built console, gzipped (what a browser may download); `inventory_ms` the
 * median, over --loads fresh browser contexts (cold cache), from navigation start until the
 * Inventory screen shows counts, in headless Chromium against a hub on this machine.
 */
export function registerBenchConsole(bench: Command): void {
  const cmd = bench.command('console').description('Web console: JavaScript shipped (gzipped) and navigation-to-counts time of the Inventory screen');
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const dist = consoleDistDir();
    if (!dist) throw new Error('the console is not built: run npm install (or npm run build:console)');
    const assets = join(dist, 'assets');
    const gzipKb = (files: string[]) => Math.round(files.reduce((n, f) => n + gzipSync(readFileSync(join(assets, f)), { level: 9 }).length, 0) / 102.4) / 10;
    const jsFiles = readdirSync(assets).filter((f) => f.endsWith('.js'));

    const dataDir = mkdtempSync(join(tmpdir(), 'shelfsight-bench-console-'));
    const key = randomBytes(24).toString('base64url');
    const site = 'bench-console';
    const hub = await startHub(
      loadHubConfig({}, { HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_HOST: '127.0.0.1', DATA_DIR: dataDir, HUB_API_KEY: key, MQTT_AUTH: 'off', HTTP_RATE_PER_MINUTE: '100000000', TRAINING_WORKER: 'off' }),
      { logLevels: ['error'] },
    );
    try {
      process.stderr.write(`bench console: storing ${c.frames} simulated detections\n`);
      const sim = spawnShelf(
        ['sim', '--agents', '2', '--frames-per-agent', String(Math.ceil(c.frames / 2)), '--rate', '1000', '--mqtt-url', hub.mqttUrl, '--state-dir', join(dataDir, 'sim'), '--site', site],
        {},
      );
      const simExit = await sim.exited;
      if (simExit !== 0) throw new Error(`shelf sim failed (${simExit}): ${sim.stderr().slice(-500)}`);

      const browser = await launchChromium();
      const times: number[] = [];
      const loadedJs = new Set<string>();
      try {
        for (let i = 0; i < c.loads; i++) {
          const context = await browser.newContext();
          await context.addInitScript((k) => (globalThis as unknown as { sessionStorage: { setItem(a: string, b: string): void } }).sessionStorage.setItem('shelfsight.apiKey', k), key);
          const page = await context.newPage();
          page.on('response', (r) => {
            const m = /\/assets\/([^/?]+\.js)$/.exec(r.url());
            if (m) loadedJs.add(m[1]!);
          });
          await page.goto(`${hub.httpUrl}/#/inventory`);
          const handle = await page.waitForFunction(() => {
            const g = globalThis as unknown as { document: { querySelector(s: string): unknown }; performance: { now(): number } };
            return g.document.querySelector('[data-testid=inventory-counts] tr[data-category]') ? g.performance.now() : undefined;
          }, undefined, { polling: 'raf', timeout: 30_000 });
          times.push((await handle.jsonValue()) as number);
          await context.close();
          process.stderr.write(`bench console: load ${i + 1}/${c.loads}: ${times.at(-1)!.toFixed(0)} ms\n`);
        }
      } finally {
        await browser.close();
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)]!;
      process.stdout.write(
        JSON.stringify({
          js_gzip_kb: gzipKb(jsFiles),
          js_inventory_gzip_kb: gzipKb([...loadedJs]),
          js_files: jsFiles.length,
          inventory_ms: Math.round(median),
          inventory_ms_min: Math.round(times[0]!),
          inventory_ms_max: Math.round(times.at(-1)!),
          loads: c.loads,
          method: 'headless Chromium (Debian), fresh context per load (cold cache), navigation start to the first category row; hub with embedded PGlite on this machine',
          ...machineInfo(),
        }) + '\n',
      );
    } finally {
      await hub.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}
