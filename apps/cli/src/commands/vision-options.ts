import { z } from 'zod';
import { cfg, type ConfigField, type ConfigSpec } from '@shelfsight/common';
import { TTA_MODES, VisionError, type ExtractionOptions } from '@shelfsight/vision';

/** `--offline`: for every command that may fetch a backbone. */
export const OFFLINE_FIELD = {
  env: 'SHELF_OFFLINE',
  flag: 'offline',
  description: 'never use the network: URL / catalogue backbones must already be cached',
  schema: cfg.bool(false),
} satisfies ConfigField;

/** Options shared by the commands that run a backbone over images (train, eval, predict, bench). */
export const EXTRACTION_SPEC = {
  workers: {
    env: 'SHELF_WORKERS',
    flag: 'workers',
    description: 'worker threads running the backbone (default: all cores)',
    schema: z.coerce.number().int().min(1).max(64).optional(),
  },
  cacheDir: {
    env: 'SHELF_CACHE_DIR',
    flag: 'cache-dir',
    description: 'cache folder for bottlenecks and downloaded backbones (default ~/.cache/shelfsight)',
    schema: cfg.optionalString(),
  },
  cache: {
    env: 'SHELF_CACHE',
    flag: 'cache',
    description: 'read and write the bottleneck cache (--no-cache: neither)',
    schema: cfg.bool(true),
  },
  offline: OFFLINE_FIELD,
} satisfies ConfigSpec;

export function extractionFrom(config: { workers?: number; cacheDir?: string; cache: boolean; offline: boolean }): Omit<ExtractionOptions, 'backbone'> {
  return {
    workers: config.workers,
    offline: config.offline,
    cacheDir: config.cache ? config.cacheDir : false,
  };
}

export const TTA = z.enum(TTA_MODES);

/**
 * Wrap a vision command's action: expected failures (`VisionError`: bad image set,
 * offline, checksum, foreign backbone, damaged artifact) print one clear line and exit 2
 * instead of a stack trace.
 */
export function visionAction<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof VisionError) {
        process.stderr.write(`shelf: ${err.name}: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw err;
    }
  };
}
