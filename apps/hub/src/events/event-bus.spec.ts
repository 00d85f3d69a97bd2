import { ClusterBus } from '../cluster/cluster-bus';
import { EventBus, type BusTimers } from './event-bus';
import type { HubEvent } from './hub-events';

class ManualTimers implements BusTimers {
  private due: Array<() => void> = [];
  setTimeout(fn: () => void): unknown {
    this.due.push(fn);
    return fn;
  }
  clearTimeout(handle: unknown): void {
    this.due = this.due.filter((f) => f !== handle);
  }
  fire(): void {
    const due = this.due;
    this.due = [];
    for (const f of due) f();
  }
  get pending(): number {
    return this.due.length;
  }
}

/** Two replicas' buses joined in memory (the wire itself is cluster-wire.spec's). */
class FakeCluster extends ClusterBus {
  readonly sent: Array<{ kind: string; body: unknown }> = [];
  private readonly handlers: Array<{ kind: string; fn: (b: unknown) => void }> = [];
  peer?: FakeCluster;
  constructor(readonly origin: string, private readonly limit = Infinity) {
    super();
  }
  send(kind: string, body: unknown): void {
    this.sent.push({ kind, body });
    const copy: unknown = JSON.parse(JSON.stringify(body));
    for (const h of this.peer?.handlers ?? []) if (h.kind === kind) h.fn(copy);
  }
  fits(_kind: string, body: unknown): boolean {
    return JSON.stringify(body).length <= this.limit;
  }
  on(kind: string, fn: (b: unknown) => void): () => void {
    this.handlers.push({ kind, fn });
    return () => undefined;
  }
  onResync(): () => void {
    return () => undefined;
  }
}

const device = (id: string, online = true) => ({
  id, kind: 'sim', site: 's', online, lastSeenAt: null, agentVersion: null, backboneId: null, modelVersion: null, epoch: null, epochChangedAt: null, lastHeartbeat: null,
});

describe(EventBus.name, () => {
  let timers: ManualTimers;
  let sut: EventBus;
  let seen: HubEvent[];

  beforeEach(() => {
    timers = new ManualTimers();
    sut = new EventBus(timers);
    seen = [];
  });

  it('delivers uncoalesced events at once to every open stream', () => {
    const other: HubEvent[] = [];
    sut.stream().subscribe((e) => seen.push(e));
    sut.stream().subscribe((e) => other.push(e));
    sut.publish('inventory', { site: 's', at: 't' });
    expect(seen).toEqual([{ name: 'inventory', data: { site: 's', at: 't' } }]);
    expect(other).toHaveLength(1);
  });

  it('delivers one event per coalesce key per window, the newest, in first-arrival order', () => {
    sut.stream().subscribe((e) => seen.push(e));
    for (let i = 0; i < 50; i++) sut.publish('device', { ...device('a'), epoch: String(i) }, { coalesce: 'device:a' });
    sut.publish('device', device('b'), { coalesce: 'device:b' });
    sut.publish('device', device('a', false), { coalesce: 'device:a' });
    expect(seen).toEqual([]);
    expect(timers.pending).toBe(1);
    timers.fire();
    expect(seen.map((e) => (e.data as { id: string }).id)).toEqual(['b', 'a']);
    expect((seen[1]!.data as { online: boolean }).online).toBe(false);
    sut.publish('device', device('a'), { coalesce: 'device:a' });
    timers.fire();
    expect(seen).toHaveLength(3);
  });

  it('costs nothing and keeps nothing while nobody listens, and counts listeners', () => {
    sut.publish('device', device('a'), { coalesce: 'device:a' });
    expect(timers.pending).toBe(0);
    const sub = sut.stream().subscribe((e) => seen.push(e));
    expect(sut.listenerCount).toBe(1);
    sub.unsubscribe();
    expect(sut.listenerCount).toBe(0);
    sut.publish('inventory', { site: 's', at: 't' });
    expect(seen).toEqual([]);
  });

  it('drops a pending flush when the module stops', () => {
    sut.stream().subscribe((e) => seen.push(e));
    sut.publish('device', device('a'), { coalesce: 'device:a' });
    sut.onModuleDestroy();
    expect(timers.pending).toBe(0);
  });

  describe('across replicas', () => {
    let linkA: FakeCluster;
    let linkB: FakeCluster;
    let a: EventBus;
    let b: EventBus;
    let seenA: HubEvent[];
    let seenB: HubEvent[];

    beforeEach(() => {
      linkA = new FakeCluster('a', 400);
      linkB = new FakeCluster('b', 400);
      linkA.peer = linkB;
      linkB.peer = linkA;
      a = new EventBus(timers, linkA);
      b = new EventBus(timers, linkB);
      seenA = [];
      seenB = [];
      a.stream().subscribe((e) => seenA.push(e));
      b.stream().subscribe((e) => seenB.push(e));
    });

    const settle = () => new Promise((r) => setImmediate(r));

    it('delivers what one replica publishes to the streams of both, once each', async () => {
      a.publish('inventory', { site: 's', at: 't' });
      await settle();
      expect(seenA).toEqual([{ name: 'inventory', data: { site: 's', at: 't' } }]);
      expect(seenB).toEqual(seenA);
      expect(linkB.sent).toEqual([]); // B does not send on what it got
    });

    it('coalesces where the event happened (one message per key per window) and again where it is delivered', async () => {
      for (let i = 0; i < 20; i++) a.publish('device', { ...device('a'), epoch: String(i) }, { coalesce: 'device:a' });
      expect(linkA.sent).toEqual([]);
      timers.fire();
      await settle();
      expect(linkA.sent).toHaveLength(1);
      expect(seenA.map((e) => (e.data as { epoch: string }).epoch)).toEqual(['19']);
      expect(linkA.sent[0]!.body).toMatchObject({ n: 'device', c: 'device:a' }); // whole, with its key
      // B saw the same device itself meanwhile: its stream gets one event for both, the newest.
      b.publish('device', { ...device('a'), epoch: '20' }, { coalesce: 'device:a', local: true });
      expect(seenB).toEqual([]);
      timers.fire();
      expect(seenB.map((e) => (e.data as { epoch: string }).epoch)).toEqual(['20']);
    });

    it('keeps local events (each replica sees the change itself) to this replica', async () => {
      a.publish('training', { id: 7 } as never, { local: true });
      await settle();
      expect(seenA).toHaveLength(1);
      expect(linkA.sent).toEqual([]);
      expect(seenB).toEqual([]);
    });

    it('tells the other replicas even when nobody listens to this one', async () => {
      const quiet = new EventBus(timers, linkA);
      linkA.sent.length = 0;
      quiet.publish('rollout', { id: 'ro_1', at: 't' });
      await settle();
      expect(linkA.sent).toHaveLength(1);
      expect(seenB.filter((e) => e.name === 'rollout')).toHaveLength(1);
    });

    it('sends a large event as a reference that the receiver reads again through its loader', async () => {
      const big = { ...device('big'), agentVersion: 'v'.repeat(1000) };
      b.resolveWith('device', async (id) => (id === 'big' ? big : undefined));
      a.publish('device', big);
      expect(linkA.sent[0]!.body).toEqual({ n: 'device', ref: 'big' });
      await settle();
      expect(seenB).toEqual([{ name: 'device', data: big }]);
    });
  });
});
