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
});
