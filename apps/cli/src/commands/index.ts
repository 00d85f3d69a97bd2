/* eslint-disable @typescript-eslint/no-require-imports -- loaded on demand, see below */
import type { Command } from 'commander';

/** A sub-command registers itself (name, options, help, action) on the program. */
export type RegisterCommand = (program: Command) => void;

/**
 * Sub-commands by name, each loaded only when needed: `shelf agent` on a device must not
 * pay (in start time and memory) for the hub's NestJS and Prisma, nor the hub for
 * TensorFlow.js. `shelf --help` loads them all. One line per sub-command; alphabetical.
 */
export const COMMANDS: Record<string, () => RegisterCommand> = {
  agent: () => require('./agent').registerAgent,
  bench: () => require('./bench').registerBench,
  blobs: () => require('./blobs').registerBlobs,
  categories: () => require('./categories').registerCategories,
  dataset: () => require('./dataset').registerDataset,
  device: () => require('./device').registerDevice,
  eval: () => require('./eval').registerEval,
  hub: () => require('./hub').registerHub,
  jobs: () => require('./jobs').registerJobs,
  key: () => require('./key').registerKey,
  keys: () => require('./keys').registerKeys,
  models: () => require('./models').registerModels,
  predict: () => require('./predict').registerPredict,
  rollouts: () => require('./rollouts').registerRollouts,
  samples: () => require('./samples').registerSamples,
  sim: () => require('./sim').registerSim,
  start: () => require('./start').registerStart,
  train: () => require('./train').registerTrain,
  worker: () => require('./worker').registerWorker,
};

/** The loaders to run for these arguments: the named sub-command, none for `--version`, or all of them. */
export function commandsFor(argv: string[]): RegisterCommand[] {
  const name = argv.find((a) => !a.startsWith('-'));
  if (name === undefined && argv.some((a) => a === '-V' || a === '--version')) return [];
  const only = name !== undefined && name !== 'help' ? COMMANDS[name] : undefined;
  return (only ? [only] : Object.values(COMMANDS)).map((load) => load());
}
