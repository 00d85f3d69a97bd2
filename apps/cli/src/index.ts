/**
 * `@shelfsight/cli`: what other packages (tests, benchmarks, the docs generator) may use
 * of the CLI. Anything else under apps/cli/src is internal (lint: import-x/no-restricted-paths).
 */
export { buildProgram, main } from './main';
export { freePort, histogramQuantile, metricSum, processMemoryMb, SHELF_BIN, spawnShelf, waitForHttp, type ShelfProcess } from './bench/processes';
export { createScratchDatabase, type ScratchDatabase } from './bench/scratch-database';
export { START_SPEC } from './commands/start';
export { SIM_SPEC } from './commands/sim';
export { TRAIN_SPEC } from './commands/train';
