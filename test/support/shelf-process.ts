import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const SHELF = join(__dirname, '..', '..', 'bin', 'shelf.js');

export interface ShelfProcess {
  child: ChildProcess;
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: no cleanup at all. */
  kill(): Promise<void>;
}

/** Run a `shelf <command>` (worker, hub, …) as a separate process. */
export function spawnShelf(command: string, args: Record<string, string | number> = {}, env: NodeJS.ProcessEnv = {}): ShelfProcess {
  const argv = [SHELF, command, ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const child = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
