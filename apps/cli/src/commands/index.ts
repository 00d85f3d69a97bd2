import type { Command } from 'commander';
import { registerAgent } from './agent';
import { registerBench } from './bench';
import { registerDataset } from './dataset';
import { registerEval } from './eval';
import { registerHub } from './hub';
import { registerPredict } from './predict';
import { registerSim } from './sim';
import { registerStart } from './start';
import { registerTrain } from './train';

/** A sub-command registers itself (name, options, help, action) on the program. */
export type RegisterCommand = (program: Command) => void;

// One line per sub-command file; keep alphabetical.
export const COMMANDS: RegisterCommand[] = [registerAgent, registerBench, registerDataset, registerEval, registerHub, registerPredict, registerSim, registerStart, registerTrain];
