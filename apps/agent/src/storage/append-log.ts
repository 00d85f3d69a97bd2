import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { syncDir } from './atomic-file';

interface Op {
  kind: 'append' | 'rewrite';
  data: string;
  sync: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * An append-only file of JSON lines with group commit: concurrent `append` calls
 * are written together and share one fsync. Writes are strictly ordered.
 *
 * Reading tolerates a torn last line (a crash in the middle of a write): it is
 * ignored and cut off before the next append, so the file stays line-aligned.
 */
export class AppendLog {
  private handle: fsp.FileHandle | undefined;
  private queue: Op[] = [];
  private writing: Promise<void> | undefined;
  private sizeBytes = 0;

  private constructor(readonly file: string) {}

  /**
   * Open (creating if needed) and read every complete line. A last line without its
   * newline is dropped (`torn`), as is any line that is not JSON (`corrupt`).
   */
  static async open(file: string): Promise<{ log: AppendLog; records: unknown[]; torn: boolean; corrupt: number }> {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const log = new AppendLog(file);
    let text = '';
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lastNewline = text.lastIndexOf('\n');
    const complete = text.slice(0, lastNewline + 1);
    const torn = complete.length < text.length;
    const records: unknown[] = [];
    let corrupt = 0;
    for (const line of complete.split('\n')) {
      if (line === '') continue;
      try {
        records.push(JSON.parse(line));
      } catch {
        corrupt++;
      }
    }
    log.handle = await fsp.open(file, 'a+');
    if (torn) {
      await log.handle.truncate(Buffer.byteLength(complete));
      await log.handle.sync();
    }
    log.sizeBytes = Buffer.byteLength(complete);
    return { log, records, torn, corrupt };
  }

  get size(): number {
    return this.sizeBytes;
  }

  /** Append records as JSON lines; resolves once written (and fsynced when `sync`). */
  append(records: unknown[], sync = true): Promise<void> {
    const data = records.map((r) => JSON.stringify(r) + '\n').join('');
    return this.enqueue({ kind: 'append', data, sync });
  }

  /** Append one record its caller already serialised (one line of JSON, no newline); as {@link append}. */
  appendLine(json: string, sync = true): Promise<void> {
    return this.enqueue({ kind: 'append', data: json + '\n', sync });
  }

  /**
   * Atomically replace the file with `records`: write a temp file, fsync, rename over,
   * fsync the directory. Ordered with appends: earlier appends go to the old file
   * first, later ones land in the new file.
   */
  rewrite(records: unknown[]): Promise<void> {
    const data = records.map((r) => JSON.stringify(r) + '\n').join('');
    return this.enqueue({ kind: 'rewrite', data, sync: true });
  }

  /** Wait for queued writes to finish. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private enqueue(op: Omit<Op, 'resolve' | 'reject'>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...op, resolve, reject });
      if (!this.writing) this.writing = this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const first = this.queue[0] as Op;
        if (first.kind === 'rewrite') {
          this.queue.shift();
          await this.settle([first], () => this.swap(first.data));
          continue;
        }
        let n = 0;
        while (n < this.queue.length && (this.queue[n] as Op).kind === 'append') n++;
        const group = this.queue.splice(0, n);
        await this.settle(group, async () => {
          if (!this.handle) throw new Error(`append log ${this.file} is closed`);
          const buf = Buffer.from(group.map((g) => g.data).join(''));
          await this.handle.write(buf, 0, buf.length, null);
          this.sizeBytes += buf.length;
          if (group.some((g) => g.sync)) await this.handle.sync();
        });
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async settle(ops: Op[], work: () => Promise<void>): Promise<void> {
    try {
      await work();
      for (const op of ops) op.resolve();
    } catch (err) {
      for (const op of ops) op.reject(err);
    }
  }

  private async swap(text: string): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const data = Buffer.from(text);
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.write(data, 0, data.length, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.handle?.close();
    this.handle = undefined;
    try {
      await fsp.rename(tmp, this.file);
      await syncDir(path.dirname(this.file));
    } finally {
      // Reopen whichever file is in place, so a failed compaction leaves a working log.
      this.handle = await fsp.open(this.file, 'a+');
      this.sizeBytes = (await this.handle.stat()).size;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }
}
