/* eslint-disable @typescript-eslint/no-require-imports -- the specs load on call, see cliConfigSpecs */
import type { ConfigSpec } from '@shelfsight/common';

/**
 * `@shelfsight/cli`: what other packages (tests, benchmarks, the docs generator) may use
 * of the CLI. Anything else under apps/cli/src is internal (lint: import-x/no-restricted-paths).
 * Kept light: importing it loads neither the hub nor TensorFlow.js.
 */
export { buildProgram, main } from './main';
export { discoverEmbeddedUrl, freePort, histogramQuantile, metricSum, processMemoryMb, SHELF_BIN, spawnShelf, waitForHttp, type ShelfProcess } from './bench/processes';
export { createScratchDatabase, type ScratchDatabase } from './bench/scratch-database';
export { CHROMIUM_PATH, launchChromium } from './bench/browser';

/** The configuration specs of `shelf start`, `shelf sim` and `shelf train`, for the README's tables (loads the hub, agent and vision). */
export function cliConfigSpecs(): { start: ConfigSpec; sim: ConfigSpec; train: ConfigSpec } {
  return {
    start: (require('./commands/start') as typeof import('./commands/start')).START_SPEC,
    sim: (require('./commands/sim') as typeof import('./commands/sim')).SIM_SPEC,
    train: (require('./commands/train') as typeof import('./commands/train')).TRAIN_SPEC,
  };
}
