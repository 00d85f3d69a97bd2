import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { startAgent, type AgentHandle } from '../agent';
import { STAND_IN_CATEGORIES, StandInClassifier } from '../classify/stand-in-classifier';
import { agentConfig } from '../config';
import { FakeHub, waitUntil } from '../testing/fake-hub';
import { fakePng, locationOf } from '../testing/frames';
import { TestBroker } from '../testing/test-broker';
import type { CandidateView } from './head-holder';

/** A stand-in whose frames can be held in the classifier, to swap heads while one is in progress. */
class GatedStandIn extends StandInClassifier {
  gate: Promise<void> | undefined;
  override async classify(image: Buffer) {
    await this.gate;
    return super.classify(image);
  }
}

/** An in-process agent on a real broker: a head is shadowed, then swapped in while frames are queued. */
describe('agent head swap', () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;
  let agent: AgentHandle | undefined;
  const deviceId = `swap-${process.pid}`;

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-swap-'));
    broker = await TestBroker.start();
    hub = await FakeHub.start(broker.url);
  });

  afterEach(async () => {
    await agent?.stop();
    await hub.stop();
    await broker.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  const frame = (n: number) => ({
    frameId: `f-${n}`,
    site: 'site-1',
    location: locationOf(n),
    capturedAt: new Date().toISOString(),
    image: fakePng(n),
    source: 'test',
  });

  it('shadows a candidate, then activates it mid-stream without dropping a frame; heartbeats follow', async () => {
    const config = agentConfig({ deviceId, site: 'site-1', mqttUrl: broker.url, stateDir: path.join(tmp, 'state'), heartbeatMs: 100, queueSize: 64 });
    const first = new GatedStandIn('stand-in-1');
    agent = await startAgent(config, { classifier: first, logger: silentLogger });
    await waitUntil(() => agent!.stats().connected, 10_000, 'connected');

    // A head that sorts the same embeddings into other categories.
    const candidate = new StandInClassifier('stand-in-2', [...STAND_IN_CATEGORIES].reverse());
    const shadowed = new Promise<CandidateView>((resolve) => agent!.heads.once('shadow-complete', resolve));
    agent.heads.setCandidate(candidate, 10);
    await waitUntil(() => hub.heartbeats.some((h) => h.deviceId === deviceId && h.candidate?.state === 'shadowing'), 10_000, 'heartbeat with the candidate');

    for (let n = 0; n < 10; n++) agent.offer(frame(n));
    const view = await shadowed;
    expect(view.shadow?.frames).toBe(10);
    // The stand-in's categories are picked from the embedding: reversing the list changes most picks.
    expect(view.shadow?.agreement).toBeLessThan(1);
    const counts = Object.values(view.shadow?.categories ?? {});
    expect(counts.reduce((s, c) => s + c.active, 0)).toBe(10);
    expect(counts.reduce((s, c) => s + c.candidate, 0)).toBe(10);
    await agent.idle(10_000);

    // Frame 10 is held in the old head, 11..29 wait in the queue: activate now.
    let release!: () => void;
    first.gate = new Promise((r) => (release = r));
    for (let n = 10; n < 30; n++) agent.offer(frame(n));
    await waitUntil(() => agent!.stats().queueDepth === 19, 10_000, 'frame 10 in the classifier, the rest queued');
    agent.heads.activate();
    release();
    await agent.idle(20_000);

    const stored = hub.framesOf(deviceId).sort((a, b) => a.seq - b.seq);
    expect(stored).toHaveLength(30);
    expect(agent.stats().frames).toEqual({ detected: 30, rejected: 0, dropped: 0 });
    const versions = stored.map((d) => d.modelVersion);
    // The frame in progress finished on the old head; every frame after it ran on the new one.
    expect(versions).toEqual([...Array<string>(11).fill('stand-in-1'), ...Array<string>(19).fill('stand-in-2')]);
    // The new head's categories, from the reversed list, for a frame after the swap.
    const last = stored[29]!;
    expect(last.category).toBe((await candidate.classify(fakePng(29))).category);

    await waitUntil(
      () => hub.heartbeats.some((h) => h.deviceId === deviceId && h.activeModelVersion === 'stand-in-2' && h.candidate === undefined),
      10_000,
      'heartbeat naming the new active head',
    );
  });
});
