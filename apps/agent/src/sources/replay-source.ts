import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { silentLogger, type Logger } from '@shelfsight/common';
import { syntheticFrame, STAND_IN_CATEGORIES } from '../classify/stand-in-classifier';
import { frameIdOf, type Frame, type FrameSink, type FrameSource } from './frame';
import { IMAGE_EXTENSIONS, readFrameMetadata } from './sidecar';

/** One image the replay source emits again and again. */
export interface ReplayTemplate {
  name: string;
  image: Buffer;
  /** Location from the sidecar or file name; else one of `locations`, round robin. */
  location?: string;
  site?: string;
}

export interface ReplaySourceOptions {
  /** Frames per second (may be fractional). */
  rate: number;
  templates: ReplayTemplate[];
  site: string;
  /** Fallback locations for templates without one. */
  locations?: string[];
  /** Stop after this many frames (default: run until stopped). */
  limit?: number;
  /** Distinguishes this run's frame ids from earlier runs' (default: random). */
  runId?: string;
  logger?: Logger;
}

/**
 * Feeds images at a fixed rate, as a camera would: every emission is a new capture
 * (capture time now, a fresh frame id), pushed into the queue, so the queue's drop
 * policy applies when the classifier cannot keep up. For simulation and demos.
 */
export class ReplaySource implements FrameSource {
  readonly name = 'replay';
  private timer: NodeJS.Timeout | undefined;
  private emitted = 0;
  private readonly runId: string;
  private readonly logger: Logger;

  constructor(private readonly options: ReplaySourceOptions) {
    if (options.templates.length === 0) throw new Error('replay source: no images to replay');
    if (!(options.rate > 0)) throw new Error('replay source: rate must be > 0 frames/s');
    this.runId = options.runId ?? randomUUID();
    this.logger = (options.logger ?? silentLogger).child({ source: 'replay' });
  }

  /** Images (and their sidecars) from a folder. */
  static async templatesFromDir(dir: string): Promise<ReplayTemplate[]> {
    const names = (await fsp.readdir(dir)).filter((n) => IMAGE_EXTENSIONS.includes(path.extname(n).toLowerCase())).sort();
    const out: ReplayTemplate[] = [];
    for (const name of names) {
      const abs = path.join(dir, name);
      const [image, stat] = await Promise.all([fsp.readFile(abs), fsp.stat(abs)]);
      const meta = await readFrameMetadata(name, abs, stat.mtime);
      out.push({ name, image, ...('reason' in meta ? {} : { location: meta.location, site: meta.site }) });
    }
    return out;
  }

  /** Synthetic frames the stand-in classifier recognises (category in the bytes). */
  static syntheticTemplates(count: number, categories: string[] = STAND_IN_CATEGORIES): ReplayTemplate[] {
    return Array.from({ length: count }, (_, i) => ({
      name: `synthetic-${i}`,
      image: syntheticFrame(categories[i % categories.length] as string, `template ${i}`),
    }));
  }

  get emittedCount(): number {
    return this.emitted;
  }

  start(sink: FrameSink): void {
    const { rate } = this.options;
    const started = Date.now();
    const tickMs = Math.max(10, Math.min(1000, Math.round(1000 / rate)));
    const tick = () => {
      const due = Math.floor(((Date.now() - started) / 1000) * rate) - this.emitted;
      for (let i = 0; i < due && !this.done(); i++) sink.offer(this.next());
      if (this.done()) {
        this.logger.info('replay finished', { emitted: this.emitted });
        return;
      }
      this.timer = setTimeout(tick, tickMs);
    };
    this.timer = setTimeout(tick, tickMs);
  }

  private done(): boolean {
    return this.options.limit !== undefined && this.emitted >= this.options.limit;
  }

  private next(): Frame {
    const { templates, locations, site } = this.options;
    const n = this.emitted++;
    const t = templates[n % templates.length] as ReplayTemplate;
    const location = t.location ?? locations?.[n % locations.length] ?? 'R-01-1-A';
    return {
      frameId: frameIdOf(`${this.runId}/${n}/${t.name}`, t.image),
      site: t.site ?? site,
      location,
      capturedAt: new Date().toISOString(),
      image: t.image,
      source: this.name,
    };
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  idle(): boolean {
    return this.done() || this.timer === undefined;
  }
}
