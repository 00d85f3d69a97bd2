import type { Command } from 'commander';
import { registerAgent } from './agent';
import { registerBench } from './bench';
import { registerHub } from './hub';
import { registerStart } from './start';

/** A sub-command registers itself (name, options, help, action) on the program. */
export type RegisterCommand = (program: Command) => void;

// One line per sub-command file; keep alphabetical.
export const COMMANDS: RegisterCommand[] = [registerAgent, registerBench, registerHub, registerStart];
