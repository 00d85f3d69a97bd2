import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, createLogger, loadConfig } from '@shelfsight/common';
import { agentConfig, startAgent, type AgentHandle } from '@shelfsight/agent';
import { HUB_CONFIG_SPEC, loadHubConfig, ModelsService, startHub } from '@shelfsight/hub';
import { ensureDemoModel, initRuntime, loadClassifier } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom, onShutdown } from '../options';

export const START_SPEC = {
  agents: { env: 'DEMO_AGENTS', flag: 'agents', description: 'simulated agents in the demo fleet', schema: z.coerce.number().int().min(0).max(50).default(3) },
  demoDir: { env: 'DEMO_DIR', flag: 'demo-dir', description: 'folder for the generated demo model, sample frames and agent state', schema: cfg.string('.data/demo') },
  patrolS: {
    env: 'DEMO_PATROL_S',
    flag: 'patrol-s',
    description: 'every this many seconds each demo agent photographs a few shelves again (0 = only once)',
    schema: z.coerce.number().int().min(0).default(30),
  },
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
    // The demo fleet connects without credentials: the open broker, unless asked otherwise.
    const hubConfig = loadHubConfig(flagsFrom(HUB_CONFIG_SPEC, opts), { MQTT_AUTH: 'off', ...process.env });
    const demoDir = resolve(demoConfig.demoDir);

    // The demo alone opens the viewer endpoints to requests without a key (so `curl .../inventory`
    // works); it is an option of this command, not a setting any deployment could turn on.
    const hub = await startHub(hubConfig, { anonymousViewer: true });
    const runtime = await initRuntime();
    log.info('ML runtime ready', { backend: runtime.backend });
    const demo = await ensureDemoModel(demoDir);
    // The demo model is the hub's first registered version, so the fleet's samples (of its backbone) are accepted.
    const registered = await hub.app.get(ModelsService).registerFolder(demo.modelDir, { source: 'demo', registeredBy: 'shelf start' });
    log.info(registered.created ? 'demo model registered' : 'demo model already registered', {
      version: registered.model.version,
      releasable: registered.model.releasable,
      accuracy: registered.model.accuracy,
    });

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
    const patrol = demoConfig.patrolS > 0 && agents.length > 0 ? startPatrols(demo.framesDir, join(demoDir, 'fleet'), agents.length, demoConfig.patrolS) : undefined;
    const inventoryUrl = `http://localhost:${hubConfig.httpPort}/inventory`;
    process.stderr.write(
      `\nShelfSight is running (ready in ${((Date.now() - started) / 1000).toFixed(1)} s).\n` +
        `  inventory:  curl ${inventoryUrl}\n` +
        `  devices:    curl http://localhost:${hubConfig.httpPort}/devices\n` +
        `  models:     curl -H "X-API-Key: $(cat ${join(resolve(hubConfig.dataDir), 'admin-api-key')})" http://localhost:${hubConfig.httpPort}/models\n` +
        `  API docs:   http://localhost:${hubConfig.httpPort}/docs\n` +
        `  ACCESS:     DEMO MODE - anyone who can reach port ${hubConfig.httpPort} may READ inventory, locations, detections and devices\n` +
        `              without a key; changes need an API key (HUB_API_KEY, or the first-start key in ${join(resolve(hubConfig.dataDir), 'admin-api-key')}).\n` +
        `              shelf hub never allows anonymous access.\n` +
        `  fleet:      ${agents.length} simulated agents classifying frames from ${demo.framesDir}\n` +
        `  Ctrl-C stops everything.\n\n`,
    );
    await onShutdown(async () => {
      if (patrol) clearInterval(patrol);
      for (const a of agents) await a.stop();
      await hub.stop();
    });
  });
}

const imagesIn = async (dir: string) => (await readdir(dir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();

/** Give agent `index` of `count` every count-th sample frame (image + sidecar), once. */
async function shareFrames(from: string, to: string, index: number, count: number): Promise<void> {
  await mkdir(to, { recursive: true });
  const images = await imagesIn(from);
  for (let i = index; i < images.length; i += count) {
    const image = images[i]!;
    if (!existsSync(join(to, image))) await recapture(from, image, to, image);
  }
}

/** Copy a sample frame as if photographed now: sidecar first (location, fresh capture time), then the image. */
async function recapture(from: string, image: string, to: string, name: string): Promise<void> {
  const sidecar = JSON.parse(await readFile(join(from, image.replace(/\.[^.]+$/, '.json')), 'utf8')) as Record<string, unknown>;
  await writeFile(join(to, name.replace(/\.[^.]+$/, '.json')), JSON.stringify({ ...sidecar, capturedAt: new Date().toISOString() }));
  await copyFile(join(from, image), join(to, name));
}

/**
 * Keep the demo alive: every `everyS` seconds each agent re-photographs three random
 * shelves, so counts stay fresh and history grows. Patrol files older than ten minutes
 * (long since classified) are removed so the demo folder does not grow without bound.
 */
function startPatrols(framesDir: string, fleetDir: string, agents: number, everyS: number): NodeJS.Timeout {
  let round = 0;
  const timer = setInterval(() => {
    round += 1;
    void (async () => {
      const images = await imagesIn(framesDir);
      for (let a = 1; a <= agents; a++) {
        const to = join(fleetDir, `demo-robot-${a}`, 'frames');
        for (let k = 0; k < 3; k++) {
          const image = images[Math.floor(Math.random() * images.length)]!;
          await recapture(framesDir, image, to, `patrol-${Date.now()}-${round}-${k}-${image}`);
        }
        for (const f of await readdir(to)) {
          if (f.startsWith('patrol-') && Date.now() - (await stat(join(to, f))).mtimeMs > 600_000) await rm(join(to, f), { force: true });
        }
      }
    })().catch((err: unknown) => process.stderr.write(`shelf start: patrol failed: ${(err as Error).message}\n`));
  }, everyS * 1000);
  timer.unref();
  return timer;
}
