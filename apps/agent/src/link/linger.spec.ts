import { lingerDecision, type LingerState } from './linger';

describe(lingerDecision.name, () => {
  const state = (over: Partial<LingerState>): LingerState => ({ unsent: 3, oldestAgeMs: 0, room: 500, batchSize: 50, lingerMs: 250, ...over });

  it('waits out the linger while fewer than a batch are ready', () => {
    expect(lingerDecision(state({ unsent: 3, oldestAgeMs: 100 }))).toEqual({ waitMs: 150 });
  });

  it('sends what is ready once the oldest has lingered', () => {
    expect(lingerDecision(state({ unsent: 3, oldestAgeMs: 250 }))).toEqual({ take: 3 });
  });

  it('sends a full batch at once, without lingering', () => {
    expect(lingerDecision(state({ unsent: 120, oldestAgeMs: 0 }))).toEqual({ take: 50 });
  });

  it('publishes at once with no linger (0 ms)', () => {
    expect(lingerDecision(state({ unsent: 1, oldestAgeMs: 0, lingerMs: 0 }))).toEqual({ take: 1 });
  });

  it('with room for less than a batch waits for acks until the linger expires, then sends what fits', () => {
    expect(lingerDecision(state({ unsent: 120, room: 20, oldestAgeMs: 40 }))).toEqual({ waitMs: 210 });
    expect(lingerDecision(state({ unsent: 120, room: 20, oldestAgeMs: 260 }))).toEqual({ take: 20 });
  });

  it('is blocked with a full window and idle with nothing to send', () => {
    expect(lingerDecision(state({ unsent: 120, room: 0, oldestAgeMs: 5000 }))).toEqual({ blocked: true });
    expect(lingerDecision(state({ unsent: 0 }))).toEqual({ take: 0 });
  });

  it('driven by a clock, a device at 20 frames/s sends one message per linger, not one per frame', () => {
    // Frames every 50 ms for 2 s; the link is asked to pump after every frame and whenever it asked to wake.
    let now = 0;
    const ready: number[] = []; // times the unsent detections became ready
    const messages: number[] = [];
    let wakeAt: number | undefined;
    const pump = () => {
      for (;;) {
        const d = lingerDecision({ unsent: ready.length, oldestAgeMs: now - (ready[0] ?? now), room: 500, batchSize: 50, lingerMs: 250 });
        if ('waitMs' in d) {
          wakeAt = now + d.waitMs;
          return;
        }
        if ('blocked' in d || d.take === 0) return;
        messages.push(ready.splice(0, d.take).length);
      }
    };
    for (now = 0; now <= 2000; now += 10) {
      if (wakeAt !== undefined && now >= wakeAt) {
        wakeAt = undefined;
        pump();
      }
      if (now % 50 === 0) {
        ready.push(now);
        pump();
      }
    }
    expect(messages.length).toBeLessThanOrEqual(9);
    expect(messages.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(36);
    expect(Math.min(...messages)).toBeGreaterThanOrEqual(5);
  });
});
