import { RateLimitedLog } from './rate-limited-log';

describe(RateLimitedLog.name, () => {
  let now: number;
  let lines: string[];
  let sut: RateLimitedLog;

  beforeEach(() => {
    now = 1_000_000;
    lines = [];
    sut = new RateLimitedLog((line) => lines.push(line), 1000, () => now);
  });

  it('writes the first line at once', () => {
    expect(sut.warn('a')).toBe(true);
    expect(lines).toEqual(['a']);
  });

  it('suppresses lines within the interval and names how many when it writes again', () => {
    sut.warn('a');
    now += 400;
    expect(sut.warn('b')).toBe(false);
    now += 599;
    expect(sut.warn('c')).toBe(false);
    expect(sut.suppressed).toBe(2);
    expect(lines).toEqual(['a']);
    now += 1;
    expect(sut.warn('d')).toBe(true);
    expect(lines).toEqual(['a', 'd (+2 more suppressed)']);
    expect(sut.suppressed).toBe(0);
  });

  it('measures the interval from the last line written, not from the last one suppressed', () => {
    sut.warn('a');
    now += 900;
    sut.warn('b');
    now += 200; // 1,100 ms after "a", 200 ms after the suppressed "b"
    expect(sut.warn('c')).toBe(true);
    expect(lines).toEqual(['a', 'c (+1 more suppressed)']);
  });
});
