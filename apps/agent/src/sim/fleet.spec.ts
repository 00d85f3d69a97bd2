import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { FakeHub } from '../testing/fake-hub';
import { TestBroker } from '../testing/test-broker';
import { startSimulatedFleet } from './fleet';

describe(startSimulatedFleet.name, () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'fleet-'));
    broker = await TestBroker.start();
    hub = await FakeHub.start(broker.url);
  });
  afterEach(async () => {
    await hub.stop();
    await broker.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  it('runs several agents in one process through the real outbox and link', async () => {
    const sut = await startSimulatedFleet({
      agents: 3,
      rate: 200,
      framesPerAgent: 25,
      mqttUrl: broker.url,
      stateDir: tmp,
      logger: silentLogger,
      agent: { queueSize: 100 },
    });
    try {
      await sut.idle(30_000);
      const { totals } = sut.stats();
      expect(totals).toEqual({ emitted: 75, detected: 75, dropped: 0, pending: 0, pendingBytes: 0, inFlight: 0 });
      for (const id of ['sim-1', 'sim-2', 'sim-3']) {
        const frames = hub.framesOf(id);
        expect(frames).toHaveLength(25);
        expect(frames.map((d) => d.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      }
      expect(hub.births.map((b) => b.deviceId).sort()).toEqual(['sim-1', 'sim-2', 'sim-3']);
      expect(hub.births.every((b) => b.kind === 'sim')).toBe(true);
    } finally {
      await sut.stop();
    }
  });

  it('a device at 20 frames/s lingers: few, fuller messages (and one per detection without the linger)', async () => {
    const run = async (linkLingerMs: number, prefix: string) => {
      const fleet = await startSimulatedFleet({ agents: 2, rate: 20, framesPerAgent: 30, mqttUrl: broker.url, stateDir: path.join(tmp, prefix), deviceIdPrefix: prefix, logger: silentLogger, agent: { linkLingerMs } });
      try {
        await fleet.idle(30_000);
        const links = fleet.stats().agents.map((a) => a.link);
        return { batches: links.reduce((n, l) => n + l.batchesSent, 0), detections: links.reduce((n, l) => n + l.detectionsSent, 0) };
      } finally {
        await fleet.stop();
      }
    };
    const lingering = await run(250, 'linger-');
    expect(lingering.detections).toBe(60);
    // 20 frames/s for 250 ms: about five detections a message.
    expect(lingering.batches).toBeLessThanOrEqual(60 / 3);
    const eager = await run(0, 'eager-');
    expect(eager.batches).toBeGreaterThan(60 / 2);
  }, 60_000);

  it('replays a folder of images with their sidecars', async () => {
    const frames = path.join(tmp, 'frames');
    await fsp.mkdir(frames);
    await fsp.writeFile(path.join(frames, 'x.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]));
    await fsp.writeFile(path.join(frames, 'x.json'), JSON.stringify({ location: 'Z-09-9-Z' }));
    const sut = await startSimulatedFleet({ agents: 1, rate: 100, framesPerAgent: 5, mqttUrl: broker.url, stateDir: path.join(tmp, 's'), framesDir: frames, logger: silentLogger });
    try {
      await sut.idle(30_000);
      const got = hub.framesOf('sim-1');
      expect(got).toHaveLength(5);
      expect(new Set(got.map((d) => d.location))).toEqual(new Set(['Z-09-9-Z']));
    } finally {
      await sut.stop();
    }
  });
});
