import { AppendLog } from '../storage/append-log';

export type FrameOutcome = 'ok' | 'rejected';

type JournalRecord = { k: string; id?: string; s: FrameOutcome };

/**
 * Durable record of the files a source has finished with (detected or rejected), so
 * each file is picked up once, even across restarts. A key is written only after the
 * frame's detection is durable in the outbox: a crash in between re-classifies the
 * frame, which keeps its frame id, and the hub deduplicates it.
 */
export class ProcessedJournal {
  private constructor(
    private readonly log: AppendLog,
    private readonly keys: Map<string, FrameOutcome>,
  ) {}

  static async open(file: string): Promise<ProcessedJournal> {
    const { log, records } = await AppendLog.open(file);
    const keys = new Map<string, FrameOutcome>();
    for (const r of records as Array<Partial<JournalRecord> | null>) {
      if (typeof r?.k === 'string') keys.set(r.k, r.s === 'rejected' ? 'rejected' : 'ok');
    }
    return new ProcessedJournal(log, keys);
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  get size(): number {
    return this.keys.size;
  }

  async mark(key: string, outcome: FrameOutcome, frameId?: string): Promise<void> {
    this.keys.set(key, outcome);
    await this.log.append([{ k: key, id: frameId, s: outcome } satisfies JournalRecord], true);
  }

  /**
   * Forget keys not in `present` (files that left the directory), rewriting the
   * journal atomically; keeps it proportional to the directory, not to history.
   */
  async retain(present: Set<string>): Promise<number> {
    const before = this.keys.size;
    for (const k of [...this.keys.keys()]) if (!present.has(k)) this.keys.delete(k);
    await this.log.rewrite([...this.keys].map(([k, s]) => ({ k, s }) satisfies JournalRecord));
    return before - this.keys.size;
  }

  async close(): Promise<void> {
    await this.log.close();
  }
}
