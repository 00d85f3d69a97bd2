import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, type ConfigSpec } from '@shelfsight/common';
import { TTA_MODES, VisionError, type ExtractionOptions } from '@shelfsight/vision';

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
} satisfies ConfigSpec;

/** Boolean switches (no value), shared by the same commands. */
export function addExtractionSwitches(cmd: Command): Command {
  return cmd
    .option('--offline', 'never use the network: URL / catalogue backbones must already be cached [env SHELF_OFFLINE=1]')
    .option('--no-cache', 'do not read or write the bottleneck cache');
}

export function extractionFrom(
  config: { workers?: number; cacheDir?: string },
  opts: Record<string, unknown>,
): Omit<ExtractionOptions, 'backbone'> {
  const offline = opts.offline === true || ['1', 'true', 'yes'].includes((process.env.SHELF_OFFLINE ?? '').toLowerCase());
  return {
    workers: config.workers,
    offline,
    cacheDir: opts.cache === false ? false : config.cacheDir,
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
