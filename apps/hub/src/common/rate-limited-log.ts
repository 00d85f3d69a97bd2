/**
 * A warning that may repeat in a flood (refused payloads, refused clients, seq conflicts):
 * at most one line per `intervalMs` is written; the lines in between are counted, and the
 * next line written says how many were suppressed. The counter metrics beside it stay exact.
 */
export class RateLimitedLog {
  private lastAt = Number.NEGATIVE_INFINITY;
  private suppressedCount = 0;

  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Write `line` (with a note of what was suppressed before it) unless one was written less than `intervalMs` ago. */
  warn(line: string): boolean {
    const now = this.now();
    if (now - this.lastAt < this.intervalMs) {
      this.suppressedCount += 1;
      return false;
    }
    const extra = this.suppressedCount > 0 ? ` (+${this.suppressedCount} more suppressed)` : '';
    this.suppressedCount = 0;
    this.lastAt = now;
    this.write(line + extra);
    return true;
  }

  /** Lines not written since the last one that was. */
  get suppressed(): number {
    return this.suppressedCount;
  }
}
