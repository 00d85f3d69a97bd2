import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { BackboneIdentity } from '../backbones/backbone';

/** Root of ShelfSight's caches: `$SHELF_CACHE_DIR`, else `~/.cache/shelfsight`. */
export function defaultCacheRoot(): string {
  return process.env.SHELF_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'shelfsight');
}

/**
 * Bottleneck vectors on disk, one small float32 file per (image content hash, view),
 * under a folder per backbone id + checksum: a second run on the same images (wherever
 * they live, whatever their names) does not run the backbone again.
 */
export class BottleneckCache {
  readonly dir: string;
  hits = 0;
  misses = 0;

  constructor(
    root: string,
    backbone: BackboneIdentity,
    readonly featureDim: number,
  ) {
    this.dir = join(root, 'bottlenecks', `${backbone.id.replace(/[^A-Za-z0-9_.-]/g, '_')}-${backbone.checksum.slice(0, 16)}`);
  }

  private file(imageHash: string, view: string): string {
    return join(this.dir, imageHash.slice(0, 2), `${imageHash}.${view}.f32`);
  }

  async get(imageHash: string, view: string): Promise<Float32Array | undefined> {
    try {
      const buf = await readFile(this.file(imageHash, view));
      if (buf.byteLength !== this.featureDim * 4) {
        this.misses++;
        return undefined;
      }
      this.hits++;
      const out = new Float32Array(this.featureDim);
      new Uint8Array(out.buffer).set(buf);
      return out;
    } catch {
      this.misses++;
      return undefined;
    }
  }

  async put(imageHash: string, view: string, features: Float32Array): Promise<void> {
    const path = this.file(imageHash, view);
    await mkdir(join(this.dir, imageHash.slice(0, 2)), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, Buffer.from(features.buffer, features.byteOffset, features.byteLength));
    await rename(tmp, path);
  }
}
