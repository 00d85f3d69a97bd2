import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';

/**
 * A PostgreSQL server the chaos run starts, kills and restarts itself: Debian's server
 * binaries on a data folder and port of its own, never the machine's shared instance.
 */
export class OwnedPostgres {
  private child?: ChildProcess;
  private readonly bin: string;
  private readonly asRoot = process.getuid?.() === 0;

  constructor(
    readonly dataDir: string,
    readonly port: number,
  ) {
    const root = '/usr/lib/postgresql';
    const version = existsSync(root) ? readdirSync(root).sort().pop() : undefined;
    if (!version) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
    this.bin = join(root, version, 'bin');
  }

  get url(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
  }

  init(): void {
    mkdirSync(this.dataDir, { recursive: true });
    if (this.asRoot) chownSync(this.dataDir, uid('postgres'), gid('postgres'));
    this.run(join(this.bin, 'initdb'), ['-D', this.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  }

  /** Start the server; after a kill -9 it may take a moment until the old backends are gone. */
  async start(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const args = ['-D', this.dataDir, '-p', String(this.port), '-k', this.dataDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on'];
      const [cmd, argv] = this.asRoot ? ['runuser', ['-u', 'postgres', '--', join(this.bin, 'postgres'), ...args]] : [join(this.bin, 'postgres'), args];
      const child = spawn(cmd, argv, { stdio: 'ignore', detached: false });
      this.child = child;
      const up = await this.waitReady(child, 10_000);
      if (up) return;
      if (Date.now() > deadline) throw new Error('owned PostgreSQL did not start');
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** SIGKILL the postmaster (its backends notice and exit on their own). */
  kill(): void {
    if (!this.child?.pid) return;
    try {
      // runuser forwards nothing on SIGKILL: kill the server process itself.
      const pids = execFileSync('pgrep', ['-f', `postgres -D ${this.dataDir}`]).toString().trim().split('\n');
      for (const pid of pids) if (pid) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
    this.child.kill('SIGKILL');
    this.child = undefined;
  }

  async stop(): Promise<void> {
    this.kill();
    await new Promise((r) => setTimeout(r, 500));
  }

  private async waitReady(child: ChildProcess, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) return false;
      const c = new Client({ connectionString: this.url, connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        await c.query('SELECT 1');
        await c.end();
        return true;
      } catch {
        await c.end().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    return false;
  }

  private run(cmd: string, args: string[]): void {
    if (this.asRoot) execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'ignore' });
    else execFileSync(cmd, args, { stdio: 'ignore' });
  }
}

function uid(user: string): number {
  return Number(execFileSync('id', ['-u', user]).toString().trim());
}
function gid(user: string): number {
  return Number(execFileSync('id', ['-g', user]).toString().trim());
}
