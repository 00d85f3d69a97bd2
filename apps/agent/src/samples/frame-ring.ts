import type { ClassifiedFrame } from '../pipeline/pipeline';

/**
 * The most recent classified frames, bounded by count and by bytes (oldest evicted
 * first), so the hub can ask for a frame after an operator corrected its detection.
 */
export class FrameRing {
  private readonly frames = new Map<string, ClassifiedFrame>();
  private bytes = 0;
  evicted = 0;

  constructor(
    readonly maxFrames: number,
    readonly maxBytes: number,
  ) {}

  add(c: ClassifiedFrame): void {
    if (this.maxFrames <= 0 || c.frame.image.length > this.maxBytes) return;
    this.delete(c.frame.frameId);
    this.frames.set(c.frame.frameId, c);
    this.bytes += c.frame.image.length;
    while (this.frames.size > this.maxFrames || this.bytes > this.maxBytes) {
      const oldest = this.frames.keys().next().value as string;
      this.delete(oldest);
      this.evicted++;
    }
  }

  get(frameId: string): ClassifiedFrame | undefined {
    return this.frames.get(frameId);
  }

  get size(): number {
    return this.frames.size;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  private delete(frameId: string): void {
    const c = this.frames.get(frameId);
    if (!c) return;
    this.frames.delete(frameId);
    this.bytes -= c.frame.image.length;
  }
}
