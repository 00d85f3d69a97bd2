import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeHub, waitUntil } from './testing/fake-hub';
import { writeFrames } from './testing/frames';
import { TestBroker } from './testing/test-broker';

const ROOT = path.resolve(__dirname, '../../..');

/** `shelf agent` as a real child process, so it can be killed with SIGKILL. */
function spawnAgent(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/shelf.js'), 'agent', ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', () => undefined);
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('agent process crash (kill -9)', () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-crash-'));
    broker = await TestBroker.start();
    hub = await FakeHub.start(broker.url);
  });

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await hub.stop();
    await broker.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  it('loses nothing and duplicates nothing when killed mid-batch, again and again', async () => {
    const total = 300;
    const expected = await writeFrames(path.join(tmp, 'frames'), total);
    const args = [
      ...['--device-id', 'crashy', '--site', 'site-1', '--classifier', 'stand-in'],
      ...['--mqtt-url', broker.url, '--frames-dir', path.join(tmp, 'frames'), '--state-dir', path.join(tmp, 'state')],
      ...['--poll-ms', '50', '--settle-ms', '0', '--batch-size', '7', '--reconnect-min-ms', '50', '--reconnect-max-ms', '200'],
      // Compact often, so kills also land in the middle of compactions.
      ...['--outbox-compact-bytes', '2048'],
    ];
    const distinctSeqs = () => new Set(hub.received.map((r) => r.detection.seq)).size;

    let kills = 0;
    for (const killAt of [40, 90, 150, 220]) {
      child = spawnAgent(args);
      // The previous process may have got past this mark already: kill only once this one is up.
      await waitUntil(() => hub.births.length === kills + 1, 60_000, `birth ${kills + 1}`);
      await waitUntil(() => distinctSeqs() >= killAt, 60_000, `${killAt} detections at the hub`);
      child.kill('SIGKILL');
      expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });
      kills++;
    }

    child = spawnAgent(args);
    // Up (signal handlers installed) before it is asked to stop, even if earlier runs already delivered everything.
    await waitUntil(() => hub.births.length === kills + 1, 60_000, `birth ${kills + 1}`);
    await waitUntil(() => hub.framesOf('crashy').length >= total, 60_000, 'every frame at the hub');
    // Give a last stray re-publish a chance to show up as a conflict; then stop cleanly.
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });

    expect(hub.seqConflicts).toEqual([]);
    // The sequence epoch survives every crash (and every compaction a kill interrupted).
    expect(new Set(hub.received.map((r) => r.epoch)).size).toBe(1);
    const stored = hub.framesOf('crashy');
    expect(stored.map((d) => d.frameId).sort()).toEqual([...expected].sort());
    // A crash between storing a detection and journaling its file re-classifies that one
    // frame: same frame id (the hub keeps one), new seq. At most one frame per crash.
    const seqsPerFrame = new Map<string, Set<number>>();
    for (const { detection } of hub.received) {
      const s = seqsPerFrame.get(detection.frameId) ?? new Set<number>();
      s.add(detection.seq);
      seqsPerFrame.set(detection.frameId, s);
    }
    const reclassified = [...seqsPerFrame.values()].filter((s) => s.size > 1).length;
    expect(reclassified).toBeLessThanOrEqual(kills);
    expect(hub.deaths.at(-1)).toMatchObject({ deviceId: 'crashy', reason: 'shutdown' });
    expect(hub.births.length).toBe(kills + 1);
  });
});
