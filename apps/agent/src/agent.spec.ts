import { promises as fsp } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { silentLogger } from '@shelfsight/common';
import { startAgent, type AgentHandle } from './agent';
import { StandInClassifier } from './classify/stand-in-classifier';
import { agentConfig, type AgentConfig } from './config';
import { FakeHub, waitUntil } from './testing/fake-hub';
import { fakePng, writeFrames } from './testing/frames';
import { TestBroker } from './testing/test-broker';
import { frameIdOf } from './sources/frame';

describe('startAgent', () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;
  const agents: AgentHandle[] = [];

  const start = async (overrides: Partial<AgentConfig> = {}) => {
    const config = agentConfig({
      deviceId: 'dev-1',
      site: 'site-1',
      mqttUrl: broker.url,
      framesDir: path.join(tmp, 'frames'),
      stateDir: path.join(tmp, 'state'),
      pollMs: 50,
      settleMs: 150, // never pick up a file the test is still writing (a loaded machine writes slowly)
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
      ackTimeoutMs: 2000,
      shutdownFlushMs: 2000,
      ...overrides,
    });
    const agent = await startAgent(config, { classifier: new StandInClassifier(), logger: silentLogger });
    agents.push(agent);
    return agent;
  };

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-'));
    broker = await TestBroker.start();
    hub = await FakeHub.start(broker.url);
  });

  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    await hub.stop();
    await broker.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  it('classifies directory frames, publishes them with birth, and says shutdown on stop', async () => {
    const frames = path.join(tmp, 'frames');
    const expected = await writeFrames(frames, 20);
    // A sidecar gives location, capture time and site.
    const withSidecar = fakePng(1000);
    await fsp.writeFile(path.join(frames, 'cam-0001.jpg'), withSidecar);
    await fsp.writeFile(
      path.join(frames, 'cam-0001.json'),
      JSON.stringify({ location: 'B-01-1-A', capturedAt: '2026-01-02T03:04:05.000Z', site: 'site-2' }),
    );
    // No sidecar and no location prefix; a broken sidecar; bytes that are no image.
    await fsp.writeFile(path.join(frames, 'unnamed.png'), fakePng(1001));
    await fsp.writeFile(path.join(frames, 'cam-0002.png'), fakePng(1002));
    await fsp.writeFile(path.join(frames, 'cam-0002.json'), '{"location": "nope"}');
    await fsp.writeFile(path.join(frames, 'A-01-1-A_corrupt.jpg'), 'not an image');

    const sut = await start();
    await sut.idle(20_000);

    const stored = hub.framesOf('dev-1');
    expect(stored.map((d) => d.frameId).sort()).toEqual([...expected, frameIdOf('cam-0001.jpg', withSidecar)].sort());
    const sidecar = stored.find((d) => d.frameId === frameIdOf('cam-0001.jpg', withSidecar));
    expect(sidecar).toMatchObject({ location: 'B-01-1-A', capturedAt: '2026-01-02T03:04:05.000Z', site: 'site-2' });
    expect(stored.find((d) => d.frameId === expected[0])).toMatchObject({ location: 'A-01-1-A', site: 'site-1' });
    expect(sut.stats().frames).toEqual({ detected: 21, rejected: 3, dropped: 0 });
    const metrics = await sut.metrics();
    expect(metrics).toMatch(/shelf_agent_frames_rejected_total\{reason="no_location",source="directory"\} 1/);
    expect(metrics).toMatch(/shelf_agent_frames_rejected_total\{reason="bad_sidecar",source="directory"\} 1/);
    expect(metrics).toMatch(/shelf_agent_frames_rejected_total\{reason="decode",source="directory"\} 1/);
    expect(hub.births).toEqual([expect.objectContaining({ deviceId: 'dev-1', kind: 'robot', backboneId: 'stand-in', modelVersion: 'stand-in-1' })]);

    await sut.stop();
    expect(hub.deaths).toEqual([expect.objectContaining({ deviceId: 'dev-1', reason: 'shutdown' })]);
  });

  it('picks each file up once across restarts, and new files later', async () => {
    const frames = path.join(tmp, 'frames');
    const first = await writeFrames(frames, 10);
    const a = await start();
    await a.idle(20_000);
    await a.stop();
    agents.length = 0;

    const second = await writeFrames(frames, 5, 10);
    const b = await start();
    await b.idle(20_000);
    expect(b.stats().frames.detected).toBe(5);
    expect(b.stats().outbox.nextSeq).toBe(16);
    expect(hub.framesOf('dev-1').map((d) => d.frameId).sort()).toEqual([...first, ...second].sort());
    expect(hub.received).toHaveLength(15);
  });

  it('keeps detections through a broker outage and replays them on reconnect', async () => {
    const frames = path.join(tmp, 'frames');
    const before = await writeFrames(frames, 10);
    const sut = await start();
    await sut.idle(20_000);

    await hub.stop();
    await broker.stop();
    await waitUntil(() => !sut.stats().connected, 10_000, 'agent to notice the outage');
    const during = await writeFrames(frames, 30, 10);
    await waitUntil(() => sut.stats().frames.detected === 40, 20_000, 'frames classified offline', () => sut.stats());
    expect(sut.stats().outbox.depth).toBe(30);

    await broker.restart();
    hub = await FakeHub.start(broker.url);
    await sut.idle(30_000);
    expect(sut.stats().link.connects).toBeGreaterThanOrEqual(2);
    const got = hub.framesOf('dev-1');
    expect(got.map((d) => d.frameId).sort()).toEqual(during.sort());
    expect(got.map((d) => d.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 11));
    expect(before).toHaveLength(10);
  });

  it('stops taking frames when the outbox is full, says so in metrics, and resumes after acks', async () => {
    hub.acking = false;
    const frames = path.join(tmp, 'frames');
    const expected = await writeFrames(frames, 40);
    const sut = await start({ outboxMaxBytes: 4096, queueSize: 2 });

    await waitUntil(() => sut.stats().outbox.full, 20_000, 'outbox to fill');
    await waitUntil(async () => (await sut.metrics()).includes('shelf_agent_outbox_full 1'), 5_000, 'metric');
    const held = sut.stats().frames.detected;
    expect(held).toBeLessThan(40);
    expect(sut.stats().outbox.bytes).toBeLessThan(4096 + 1024);
    // Backpressure, not loss: the rest stays on disk, nothing was dropped or rejected.
    expect(sut.stats().frames).toMatchObject({ rejected: 0, dropped: 0 });

    // The hub got everything the outbox holds; now it acks it (and everything after).
    await waitUntil(() => new Set(hub.received.map((r) => r.detection.seq)).size >= sut.stats().outbox.depth, 10_000, 'hub to receive');
    hub.acking = true;
    const seqs = [...new Set(hub.received.map((r) => r.detection.seq))];
    hub.ack('dev-1', seqs);
    await sut.idle(60_000);
    expect(hub.framesOf('dev-1').map((d) => d.frameId).sort()).toEqual(expected.sort());
    expect(await sut.metrics()).toMatch(/shelf_agent_outbox_full 0/);
  });

  it('stops promptly while the outbox is full, keeping what it holds', async () => {
    hub.acking = false;
    await writeFrames(path.join(tmp, 'frames'), 30);
    const sut = await start({ outboxMaxBytes: 2048, shutdownFlushMs: 0 });
    await waitUntil(() => sut.stats().outbox.full, 20_000, 'outbox to fill');
    const held = sut.stats().outbox.depth;
    // A liveness bound, not a benchmark: with nothing to flush (shutdownFlushMs 0) stop()
    // must not wait for acks that never come; a stop that hangs on the full outbox or the
    // waiting frames exceeds this by far (the test's own timeout would be the only limit).
    const stopping = Date.now();
    await sut.stop();
    const stopMs = Date.now() - stopping;
    expect(stopMs).toBeLessThan(10_000);
    agents.length = 0;

    hub.acking = true;
    const again = await start();
    expect(again.stats().recovery.pending).toBe(held);
    await again.idle(30_000);
    expect(hub.framesOf('dev-1')).toHaveLength(30);
  });

  it('publishes again what the hub did not acknowledge in time, and sends heartbeats', async () => {
    hub.acking = false;
    const expected = await writeFrames(path.join(tmp, 'frames'), 12);
    const sut = await start({ ackTimeoutMs: 300, heartbeatMs: 200 });
    await waitUntil(() => new Set(hub.received.map((r) => r.detection.seq)).size === 12, 10_000, 'first delivery');
    hub.acking = true;
    await sut.allAcked(20_000);
    expect(sut.stats().link.retransmits).toBeGreaterThanOrEqual(12);
    expect(hub.framesOf('dev-1').map((d) => d.frameId).sort()).toEqual(expected.sort());
    const seen = hub.heartbeats.length;
    await waitUntil(() => hub.heartbeats.length >= seen + 2, 10_000, 'heartbeats after the acks');
    expect(hub.heartbeats.at(-1)).toMatchObject({ deviceId: 'dev-1', queueDepth: 0, outboxDepth: 0, outboxBytes: 0 });
    expect(hub.heartbeats.some((h) => h.outboxDepth > 0)).toBe(true);
  });

  it('ignores and counts malformed acks', async () => {
    hub.acking = false;
    const frames = path.join(tmp, 'frames');
    await writeFrames(frames, 3);
    const sut = await start();
    await waitUntil(() => hub.received.length >= 3, 20_000, 'detections at the hub');

    await hub.publishRaw('dev-1', 'not json');
    await hub.publishRaw('dev-1', JSON.stringify({ v: 1, deviceId: 'dev-1', seqs: [-1], committedAt: 'yesterday' }));
    await hub.publishRaw('dev-1', JSON.stringify({ v: 1, deviceId: 'dev-2', seqs: [1, 2, 3], committedAt: new Date().toISOString() }));
    await waitUntil(() => sut.stats().link.acksMalformed === 3, 10_000, 'malformed acks counted');
    expect(sut.stats().outbox.depth).toBe(3);
    expect(await sut.metrics()).toMatch(/shelf_agent_acks_malformed_total 3/);

    // Well-formed, but for another epoch (say, of the storage this device had before a wipe).
    hub.ack('dev-1', [1, 2, 3], 'an-old-epoch');
    await waitUntil(() => sut.stats().link.acksOtherEpoch === 1, 10_000, 'other-epoch ack counted');
    expect(sut.stats().outbox.depth).toBe(3);
    expect(await sut.metrics()).toMatch(/shelf_agent_acks_other_epoch_total 1/);

    hub.ack('dev-1', [1, 2, 3]);
    await sut.allAcked(10_000);
    expect(sut.stats().link.acksReceived).toBe(1);
  });

  it('serves health and metrics, and takes frame uploads over HTTP', async () => {
    const port = await freePort();
    const sut = await start({ framesDir: undefined, httpPort: port, httpUpload: true });
    await waitUntil(() => sut.stats().connected, 10_000, 'connected');
    const base = `http://127.0.0.1:${port}`;

    const ok = await fetch(`${base}/frames?location=C-02-3-A&capturedAt=2026-03-04T05:06:07.000Z`, { method: 'POST', body: fakePng(7) });
    expect(ok.status).toBe(202);
    const { frameId } = (await ok.json()) as { frameId: string };
    const bad = await fetch(`${base}/frames?location=nowhere`, { method: 'POST', body: fakePng(8) });
    expect(bad.status).toBe(400);

    await waitUntil(() => hub.framesOf('dev-1').length === 1, 10_000, 'uploaded frame at the hub');
    expect(hub.framesOf('dev-1')[0]).toMatchObject({ frameId, location: 'C-02-3-A', capturedAt: '2026-03-04T05:06:07.000Z' });

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', deviceId: 'dev-1', connected: true });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/shelf_agent_frames_total\{outcome="detected"\} 1/);
    expect(metrics).toMatch(/shelf_agent_frames_rejected_total\{reason="no_location",source="http"\} 1/);
  });
});

describe('startAgent credentials', () => {
  let tmp: string;
  let broker: TestBroker;

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-creds-'));
    broker = await TestBroker.start(0, { 'dev-c': 's3cret' });
  });
  afterEach(async () => {
    await broker.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  const run = (password: string) =>
    startAgent(
      agentConfig({
        deviceId: 'dev-c',
        site: 'site-1',
        mqttUrl: broker.url,
        mqttUsername: 'dev-c',
        mqttPassword: password,
        stateDir: path.join(tmp, password),
        reconnectMinMs: 50,
        reconnectMaxMs: 100,
        shutdownFlushMs: 0,
      }),
      { classifier: new StandInClassifier(), logger: silentLogger },
    );

  it('connects with its own credentials and counts refusals of wrong ones', async () => {
    const wrong = await run('wrong');
    const right = await run('s3cret');
    try {
      await waitUntil(() => right.stats().connected, 10_000, 'connect with the right password');
      await waitUntil(() => wrong.stats().link.authFailures >= 2, 10_000, 'refusals counted');
      expect(wrong.stats().connected).toBe(false);
      expect(await wrong.metrics()).toMatch(/shelf_agent_auth_failures_total [1-9]/);
    } finally {
      await wrong.stop();
      await right.stop();
    }
  });
});

describe('startAgent samples', () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-samples-'));
    broker = await TestBroker.start();
    hub = await FakeHub.start(broker.url);
  });
  afterEach(async () => {
    await hub.stop();
    await broker.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  it('sends unsure frames as samples and answers frame requests over MQTT', async () => {
    const frames = path.join(tmp, 'frames');
    await fsp.mkdir(frames);
    const ids: string[] = [];
    for (let n = 0; n < 6; n++) {
      const png = await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 40 * n, g: 90, b: 200 - 30 * n } } }).png().toBuffer();
      const name = `A-01-${n + 1}-A_${n}.png`;
      await fsp.writeFile(path.join(frames, name), png);
      ids.push(frameIdOf(name, png));
    }
    // Every frame is "unsure" (confidence below 1.0), at most 2 per minute.
    const config = agentConfig({
      deviceId: 'dev-s',
      site: 'site-1',
      mqttUrl: broker.url,
      framesDir: frames,
      stateDir: path.join(tmp, 'state'),
      pollMs: 50,
      settleMs: 150, // never pick up a file the test is still writing (a loaded machine writes slowly)
      sampleMinConfidence: 1,
      samplesPerMinute: 2,
      frameBufferFrames: 3,
    });
    const sut = await startAgent(config, { classifier: new StandInClassifier(), logger: silentLogger });
    try {
      await sut.idle(20_000);
      await waitUntil(() => hub.samples.length === 2, 10_000, 'two samples', () => sut.stats().samples);
      expect(sut.stats().samples).toMatchObject({ low_confidence: 2, rate_limited: 4, sent: 2 });
      expect(hub.samples[0]).toMatchObject({ deviceId: 'dev-s', reason: 'low_confidence', backboneId: 'stand-in' });
      expect(hub.samples[0]?.bottleneck?.dim).toBe(16);

      await hub.requestFrame('dev-s', 'req-new', ids[5] as string);
      await hub.requestFrame('dev-s', 'req-old', ids[0] as string);
      await waitUntil(() => hub.frameReplies.length === 2, 10_000, 'frame replies');
      const byId = new Map(hub.frameReplies.map((r) => [r.requestId, r]));
      expect(byId.get('req-new')).toMatchObject({ status: 'ok', sample: { frameId: ids[5], reason: 'requested' } });
      expect(byId.get('req-old')).toMatchObject({ status: 'not_held', frameId: ids[0] });
    } finally {
      await sut.stop();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
