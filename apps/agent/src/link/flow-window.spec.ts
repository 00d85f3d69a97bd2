import { FlowWindow, type FlowWindowOptions } from './flow-window';

describe(FlowWindow.name, () => {
  let now: number;
  let random: number;
  let sut: FlowWindow;
  const options: FlowWindowOptions = { max: 2000, min: 50, initial: 200, step: 50, backoffMs: 500, maxBackoffMs: 10_000 };

  beforeEach(() => {
    now = 1_000_000;
    random = 0.5;
    sut = new FlowWindow(options, { now: () => now }, () => random);
  });

  it('grows by one step per window of acknowledged detections (additive increase), up to its ceiling', () => {
    expect(sut.size).toBe(200);
    sut.onAcked(200);
    expect(sut.size).toBe(250);
    for (let i = 0; i < 1000; i++) sut.onAcked(sut.size);
    expect(sut.size).toBe(2000);
  });

  it('halves on a timeout (multiplicative decrease), never below its floor, and holds for a jittered back-off that doubles', () => {
    sut.onTimeout();
    expect(sut.size).toBe(100);
    expect(sut.holdMs()).toBe(375); // 500 ms back-off, equal jitter: 250 + 0.5 * 250
    now += 400;
    expect(sut.holdMs()).toBe(0);
    random = 0;
    sut.onTimeout();
    expect(sut.size).toBe(50);
    expect(sut.holdMs()).toBe(500); // 1000 ms back-off, the lowest of its jitter
    sut.onTimeout();
    expect(sut.size).toBe(50);
    expect(sut.decreases).toBe(3);
  });

  it('an ack ends the run of timeouts: the next back-off starts small again', () => {
    random = 1;
    sut.onTimeout();
    sut.onTimeout();
    now += 10_000;
    sut.onAcked(1);
    sut.onTimeout();
    expect(sut.holdMs()).toBe(500);
  });

  it("takes the hub's window as a ceiling, and none when the hub names none", () => {
    sut.onHubWindow(30);
    expect(sut.size).toBe(30);
    sut.onHubWindow(undefined);
    expect(sut.size).toBe(200);
  });

  it("holds for the hub's retry-after with jitter, and halves once per hold however many batches it defers", () => {
    random = 0;
    sut.onRetryAfter(1000);
    expect(sut.holdMs()).toBe(750);
    random = 1;
    sut.onRetryAfter(1000);
    expect(sut.holdMs()).toBe(1250);
    expect(sut.size).toBe(100);
    now += 1300;
    sut.onRetryAfter(1000);
    expect(sut.size).toBe(50);
  });

  it('starts over on a new connection', () => {
    sut.onTimeout();
    sut.onHubWindow(10);
    sut.reset();
    expect(sut.size).toBe(200);
    expect(sut.holdMs()).toBe(0);
  });
});
