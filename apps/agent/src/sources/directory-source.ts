import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { silentLogger, type Logger } from '@shelfsight/common';
import { frameIdOf, type Frame, type FrameSink, type FrameSource } from './frame';
import { IMAGE_EXTENSIONS, readFrameMetadata } from './sidecar';
import type { ProcessedJournal } from './processed-journal';



export interface DirectorySourceOptions {
  dir: string;
  site: string;
  pollMs: number;
  /** Only files unmodified for this long are picked up (writers finish first). */
  settleMs: number;
  journal: ProcessedJournal;
  /** Delete an image (and its sidecar) once its detection is stored or it was rejected. */
  deleteProcessed?: boolean;
  /** Compact the journal when it holds more than 2 × (files present) + this many keys. */
  journalSlack?: number;
  logger?: Logger;
}

/**
 * Polls a directory (recursively) for images. Each file is offered once: the
 * processed journal remembers `path|size|mtime` of every file it finished, across
 * restarts; a file replaced by a new one (other size or mtime) is a new frame.
 *
 * Backpressure: the source only offers while the sink has room; everything else
 * stays on disk for the next scan, so this source never loses a frame.
 */
export class DirectorySource implements FrameSource {
  readonly name = 'directory';
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private stopped = false;
  private sink: FrameSink | undefined;
  /** Files offered and not yet settled (in the queue or being classified). */
  private readonly claimed = new Set<string>();
  private waiting = 0;
  private scans = 0;
  private readonly logger: Logger;

  constructor(private readonly options: DirectorySourceOptions) {
    this.logger = (options.logger ?? silentLogger).child({ source: 'directory', dir: options.dir });
  }

  start(sink: FrameSink): void {
    this.sink = sink;
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      this.scanning = this.scan()
        .catch((err: unknown) => this.logger.error('scan failed', { err }))
        .finally(() => {
          this.scanning = undefined;
          if (!this.stopped) this.timer = setTimeout(tick, this.options.pollMs);
        });
    };
    tick();
  }

  /** Scan now (also called by the agent when the queue frees up). */
  poke(): void {
    if (this.scanning || this.stopped || !this.sink) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.start(this.sink as FrameSink), 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.scanning;
  }

  /** Nothing waiting on disk and nothing in flight, as of the last complete scan. */
  idle(): boolean {
    return this.scans > 0 && this.waiting === 0 && this.claimed.size === 0 && !this.scanning;
  }

  private async scan(): Promise<void> {
    const sink = this.sink;
    if (!sink) return;
    const { dir, settleMs, journal } = this.options;
    let names: string[];
    try {
      names = (await fsp.readdir(dir, { recursive: true })).map((n) => n.split(path.sep).join('/'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') names = [];
      else throw err;
    }
    names.sort();
    let waiting = 0;
    const now = Date.now();
    const present = new Set<string>();
    for (const rel of names) {
      if (this.stopped) return;
      if (!IMAGE_EXTENSIONS.includes(path.extname(rel).toLowerCase())) continue;
      if (path.basename(rel).startsWith('.')) continue;
      const abs = path.join(dir, rel);
      let stat;
      try {
        stat = await fsp.stat(abs);
      } catch {
        continue; // removed meanwhile
      }
      if (!stat.isFile()) continue;
      const key = `${rel}|${stat.size}|${Math.floor(stat.mtimeMs)}`;
      present.add(key);
      if (journal.has(key) || this.claimed.has(rel)) continue;
      if (now - stat.mtimeMs < settleMs || !sink.hasRoom()) {
        waiting++;
        continue;
      }
      await this.offer(sink, rel, abs, key, stat.mtime);
    }
    this.waiting = waiting;
    this.scans++;
    // Files removed from the directory need no journal entry any more.
    if (journal.size > 2 * present.size + (this.options.journalSlack ?? 1000)) {
      const dropped = await journal.retain(present);
      this.logger.info('compacted the processed-frames journal', { dropped, kept: journal.size });
    }
  }

  private async offer(sink: FrameSink, rel: string, abs: string, key: string, mtime: Date): Promise<void> {
    const { journal } = this.options;
    const settle = async (outcome: 'ok' | 'rejected', frameId?: string) => {
      try {
        await journal.mark(key, outcome, frameId);
        if (this.options.deleteProcessed) await this.remove(abs, rel);
      } finally {
        this.claimed.delete(rel);
      }
    };
    let image: Buffer;
    try {
      image = await fsp.readFile(abs);
    } catch (err) {
      this.logger.warn('cannot read frame file; will retry', { file: rel, err });
      return;
    }
    const frameId = frameIdOf(rel, image);
    const meta = await readFrameMetadata(rel, abs, mtime);
    if ('reason' in meta) {
      this.claimed.add(rel);
      sink.reject(this.name, meta.reason, { file: rel, frameId, detail: meta.detail });
      await settle('rejected', frameId);
      return;
    }
    this.claimed.add(rel);
    const frame: Frame = {
      frameId,
      site: meta.site ?? this.options.site,
      location: meta.location,
      capturedAt: meta.capturedAt,
      image,
      source: this.name,
      settle: (outcome) => settle(outcome, frameId),
      release: () => this.claimed.delete(rel),
    };
    sink.offer(frame);
  }

  private async remove(abs: string, rel: string): Promise<void> {
    const sidecar = abs.slice(0, abs.length - path.extname(abs).length) + '.json';
    for (const file of [abs, sidecar]) {
      try {
        await fsp.unlink(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn('could not delete a processed frame', { file: rel, err });
      }
    }
  }
}
