import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { z } from 'zod';
import type { Command } from 'commander';
import { cfg, createProgress, loadConfig, packageRoot } from '@shelfsight/common';
import { IMAGE_EXTENSIONS } from '@shelfsight/vision';
import { freePort, metricSum, processMemoryMb, spawnShelf, waitForHttp } from '../bench/processes';
import { addConfigOptions, flagsFrom } from '../options';

const SPEC = {
  model: {
    env: 'AGENT_MODEL_DIR',
    flag: 'model',
    description: 'model directory to run (one written by `shelf train`); unset = the generated demo model',
    schema: cfg.optionalString(),
  },
  images: {
    env: 'SHELF_BENCH_IMAGES',
    flag: 'images',
    description: 'folder of photos (searched recursively) fed to the agent, e.g. the val folder of the Grocery Store dataset (github.com/marcusklasson/GroceryStoreDataset)',
    schema: z.string().min(1),
  },
  frames: { env: 'SHELF_BENCH_FRAMES', flag: 'frames', description: 'frames to classify (photos are reused if there are fewer)', schema: cfg.int(300, 10) },
  runtime: {
    env: 'SHELF_BENCH_RUNTIME',
    flag: 'runtime',
    description: 'device = with the Environment= lines of deploy/systemd/shelfsight-agent.service (how devices run it); plain = bare node',
    schema: z.enum(['device', 'plain']).default('device'),
  },
  mqttUrl: {
    env: 'MQTT_URL',
    flag: 'mqtt-url',
    description: 'broker for the agent; unset = none reachable, so every detection stays in the outbox (the worst case for memory)',
    schema: cfg.url(['mqtt', 'tcp']),
  },
} as const;

/**
 * `shelf bench agent`: one real `shelf agent` process classifying photos from its frames
 * directory. Reports frames/s once the model is loaded, the agent's own p95 latency,
 * and its resident memory: peak (VmHWM) and the mean over the steady part of the run.
 */
export function registerBenchAgent(bench: Command): void {
  const cmd = bench
    .command('agent')
    .description('Edge agent: frames/s, p95 latency and resident memory of one `shelf agent` process classifying photos');
  addConfigOptions(cmd, SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const photos = await findImages(c.images);
    if (photos.length === 0) throw new Error(`no photos under ${c.images}`);
    const work = await mkdtemp(join(tmpdir(), 'shelfsight-bench-agent-'));
    const framesDir = join(work, 'frames');
    await mkdir(framesDir);
    // The file-name prefix is the location (A-03-2-B_0001.jpg); 40 locations.
    for (let i = 0; i < c.frames; i++) {
      const src = photos[i % photos.length]!;
      const location = `B-${String(Math.floor(i / 10) % 10).padStart(2, '0')}-${(i % 4) + 1}-A`;
      await copyFile(src, join(framesDir, `${location}_${String(i).padStart(5, '0')}${extname(src).toLowerCase()}`));
    }
    const httpPort = await freePort();
    const mqttUrl = c.mqttUrl ?? `mqtt://127.0.0.1:${await freePort()}`;
    const args = ['agent', '--device-id', 'bench-agent', '--site', 'bench', '--frames-dir', framesDir, '--state-dir', join(work, 'state')];
    args.push('--mqtt-url', mqttUrl, '--http-port', String(httpPort), '--poll-ms', '200', '--settle-ms', '0');
    if (c.model) args.push('--model', c.model);
    process.stderr.write(`bench agent: ${c.frames} frames from ${c.images}, model ${c.model ?? 'demo (generated)'}, broker ${c.mqttUrl ?? 'none (offline)'}\n`);

    const runtimeEnv = c.runtime === 'device' ? await deviceEnvironment() : {};
    process.stderr.write(`runtime: ${c.runtime} ${JSON.stringify(runtimeEnv)}\n`);
    const started = Date.now();
    const agent = spawnShelf(args, { LOG_LEVEL: 'warn', NODE_OPTIONS: '', ...runtimeEnv });
    try {
      // An agent that cannot start (bad model, say) fails the run at once, with its log.
      await waitForHttp(`http://127.0.0.1:${httpPort}/health`, 300_000, () =>
        agent.child.exitCode !== null ? `agent exited with ${agent.child.exitCode} before it was up: ${agent.stderr().slice(-2000).trim()}` : undefined,
      );
      const progress = createProgress('classify', c.frames);
      const rss: number[] = [];
      let done = 0;
      let firstAt: number | undefined;
      let doneAtFirst = 0;
      let lastAt = 0;
      let metrics = '';
      let progressAt = Date.now();
      while (done < c.frames) {
        if (agent.child.exitCode !== null) throw new Error(`agent exited with ${agent.child.exitCode}: ${agent.stderr().slice(-2000)}`);
        if (Date.now() - progressAt > 120_000) throw new Error(`no frame classified for 2 minutes (${done} of ${c.frames}): ${agent.stderr().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 250));
        metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
        // Classified (stored in the outbox) plus refused (unreadable photos), so a bad file cannot stall the run.
        const n = metricSum(metrics, 'shelf_agent_outbox_next_seq') - 1 + metricSum(metrics, 'shelf_agent_frames_rejected_total');
        if (n > 0) {
          if (firstAt === undefined) {
            firstAt = Date.now();
            doneAtFirst = n;
          }
          // Memory once the model is loaded and frames are flowing: the steady state.
          const now = processMemoryMb(agent.child.pid, 'VmRSS');
          if (now !== undefined) rss.push(now);
        }
        if (n > done) {
          progress.tick(n - done);
          done = n;
          lastAt = progressAt = Date.now();
        }
      }
      progress.done();
      const seconds = (lastAt - (firstAt ?? lastAt)) / 1000;
      const result = {
        frames: done,
        rejected: metricSum(metrics, 'shelf_agent_frames_rejected_total'),
        // Frames finished after the first one was seen, over the time since: the model load is not counted.
        frames_per_s: seconds > 0 ? Math.round(((done - doneAtFirst) / seconds) * 10) / 10 : undefined,
        classify_p95_ms: Math.round(metricSum(metrics, 'shelf_agent_classify_p95_seconds') * 10_000) / 10,
        startup_s: Math.round(((firstAt ?? lastAt) - started) / 100) / 10,
        peak_rss_mb: agent.peakRssMb(),
        steady_rss_mb: rss.length > 0 ? Math.round(rss.reduce((a, b) => a + b, 0) / rss.length) : undefined,
        heap_used_mb: Math.round(metricSum(metrics, 'nodejs_heap_size_used_bytes') / 2 ** 20),
        external_mb: Math.round(metricSum(metrics, 'nodejs_external_memory_bytes') / 2 ** 20),
        outbox_depth: metricSum(metrics, 'shelf_agent_outbox_depth'),
        model: c.model ?? 'demo',
        runtime: c.runtime,
        cpus: cpus().length,
      };
      process.stdout.write(JSON.stringify(result) + '\n');
    } finally {
      await agent.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
}

/** The agent unit's `Environment=NAME=value` lines: the runtime settings devices use. */
async function deviceEnvironment(): Promise<Record<string, string>> {
  const unit = await readFile(join(packageRoot(), 'deploy', 'systemd', 'shelfsight-agent.service'), 'utf8');
  return Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.trim()]));
}

async function findImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && IMAGE_EXTENSIONS.includes(extname(entry.name).toLowerCase())) out.push(join(entry.parentPath, entry.name));
  }
  return out.sort();
}


