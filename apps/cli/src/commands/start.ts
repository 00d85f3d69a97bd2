import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, createLogger, loadConfig } from '@shelfsight/common';
import { agentConfig, startAgent, type AgentHandle } from '@shelfsight/agent';
import { HUB_CONFIG_SPEC, loadHubConfig, startHub } from '@shelfsight/hub';
import { ensureDemoModel, initRuntime, loadClassifier } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom, onShutdown } from '../options';

const START_SPEC = {
  agents: { env: 'DEMO_AGENTS', flag: 'agents', description: 'simulated agents in the demo fleet', schema: z.coerce.number().int().min(0).max(50).default(3) },
  demoDir: { env: 'DEMO_DIR', flag: 'demo-dir', description: 'folder for the generated demo model, sample frames and agent state', schema: cfg.string('.data/demo') },
  site: { env: 'DEMO_SITE', flag: 'site', description: 'site name of the demo fleet', schema: cfg.string('demo-site') },
} as const;

/**
 * `npm start`: the whole system on embedded defaults. The hub with its embedded broker
 * and database, plus a small fleet of agents (in this process) that classify generated
 * shelf photos with a head trained at first start.
 */
export function registerStart(program: Command): void {
  const cmd = program
    .command('start')
    .description(
      'Run ShelfSight on embedded defaults: the hub (embedded MQTT broker + PostgreSQL) and a simulated fleet of agents ' +
        'classifying generated shelf photos. First start trains a small demo model (progress on stderr).',
    );
  addConfigOptions(cmd, START_SPEC);
  addConfigOptions(cmd, HUB_CONFIG_SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const started = Date.now();
    const log = createLogger('start');
    const demoConfig = loadConfig(START_SPEC, flagsFrom(START_SPEC, opts));
    const hubConfig = loadHubConfig(flagsFrom(HUB_CONFIG_SPEC, opts));
    const demoDir = resolve(demoConfig.demoDir);

    const hub = await startHub(hubConfig);
    const runtime = await initRuntime();
    log.info('ML runtime ready', { backend: runtime.backend });
    const demo = await ensureDemoModel(demoDir);

    const agents: AgentHandle[] = [];
    if (demoConfig.agents > 0) {
      const classifier = await loadClassifier({ model: demo.modelDir });
      for (let i = 1; i <= demoConfig.agents; i++) {
        const deviceId = `demo-robot-${i}`;
        const framesDir = join(demoDir, 'fleet', deviceId, 'frames');
        await shareFrames(demo.framesDir, framesDir, i - 1, demoConfig.agents);
        agents.push(
          await startAgent(
            agentConfig({
              deviceId,
              site: demoConfig.site,
              kind: 'sim',
              mqttUrl: hub.mqttUrl,
              framesDir,
              stateDir: join(demoDir, 'fleet', deviceId, 'state'),
            }),
            { classifier, logger: createLogger('agent') },
          ),
        );
      }
    }
    const inventoryUrl = `http://localhost:${hubConfig.httpPort}/inventory`;
    process.stderr.write(
      `\nShelfSight is running (ready in ${((Date.now() - started) / 1000).toFixed(1)} s).\n` +
        `  inventory:  curl ${inventoryUrl}\n` +
        `  devices:    curl http://localhost:${hubConfig.httpPort}/devices\n` +
        `  API docs:   http://localhost:${hubConfig.httpPort}/docs\n` +
        `  fleet:      ${agents.length} simulated agents classifying frames from ${demo.framesDir}\n` +
        `  Ctrl-C stops everything.\n\n`,
    );
    await onShutdown(async () => {
      for (const a of agents) await a.stop();
      await hub.stop();
    });
  });
}

/** Give agent `index` of `count` every count-th sample frame (image + sidecar), once. */
async function shareFrames(from: string, to: string, index: number, count: number): Promise<void> {
  await mkdir(to, { recursive: true });
  const images = (await readdir(from)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
  for (let i = index; i < images.length; i += count) {
    const image = images[i]!;
    const sidecar = image.replace(/\.[^.]+$/, '.json');
    if (!existsSync(join(to, image))) {
      if (existsSync(join(from, sidecar))) await copyFile(join(from, sidecar), join(to, sidecar));
      await copyFile(join(from, image), join(to, image));
    }
  }
}
