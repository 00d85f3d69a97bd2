import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const SHELF = join(__dirname, '..', '..', 'bin', 'shelf.js');

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: no cleanup at all. */
  kill(): Promise<void>;
}

/** Run `shelf agent` as a separate process, exactly as on a device. */
export function spawnAgent(args: Record<string, string | number>, env: NodeJS.ProcessEnv = {}): AgentProcess {
  const argv = [SHELF, 'agent', ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const child = spawn(process.execPath, argv, {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
