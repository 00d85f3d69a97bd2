import type { Command } from 'commander';
import { registerBenchAgent } from './bench-agent';
import { registerBenchConsole } from './bench-console';
import { registerBenchFleet } from './bench-fleet';
import { registerBenchIngest } from './bench-ingest';
import { registerBenchInventory } from './bench-inventory';
import { registerBenchInfer } from './bench-infer';
import { registerBenchSamples } from './bench-samples';
import { registerBenchRetrain } from './bench-retrain';
import { registerBenchRollout } from './bench-rollout';
import { registerBenchTrain } from './bench-train';

/** `shelf bench <what>`: benchmarks that print numbers, the last line one JSON object. */
export type RegisterBench = (bench: Command) => void;

// One line per benchmark file (bench-*.ts); keep alphabetical.
const BENCHES: RegisterBench[] = [
  registerBenchAgent,
  registerBenchConsole,
  registerBenchFleet,
  registerBenchInfer,
  registerBenchIngest,
  registerBenchInventory,
  registerBenchRetrain,
  registerBenchRollout,
  registerBenchSamples,
  registerBenchTrain,
];

export function registerBench(program: Command): void {
  const bench = program
    .command('bench')
    .description('Benchmarks: print progress on stderr and, as the last line on stdout, one JSON object of results');
  for (const register of BENCHES) register(bench);
}
