import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { packageRoot } from '@shelfsight/common';

export const SHELF_BIN = join(packageRoot(), 'bin', 'shelf.js');

/** A free TCP port on loopback (closed again before returning). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ShelfProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** Peak resident set size so far, in MB (Linux). */
  peakRssMb(): number | undefined;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Run a `shelf` sub-command as its own process (`nodeArgs`, e.g. `--cpu-prof`, go to node itself). */
export function spawnShelf(args: string[], env: NodeJS.ProcessEnv, onStderr?: (chunk: string) => void, nodeArgs: string[] = []): ShelfProcess {
  const child = spawn(process.execPath, [...nodeArgs, SHELF_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.length > 1_000_000) out = out.slice(-500_000); // a long run's log: the last part is kept (as for stderr)
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
    onStderr?.(d.toString());
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    peakRssMb: () => processMemoryMb(child.pid, 'VmHWM'),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A process's resident memory now (VmRSS) or at its peak (VmHWM), in MB (Linux; undefined elsewhere or once it is gone). */
export function processMemoryMb(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/** Poll `url` until it answers 2xx; `gaveUp` (say, the server process died) ends the wait with its message. */
export async function waitForHttp(url: string, timeoutMs: number, gaveUp?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = gaveUp?.();
    if (reason !== undefined) throw new Error(reason);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Readers of /metrics text; one home in @shelfsight/common. */
export { histogramQuantile, metricSum } from '@shelfsight/common';

/** The hub logs the embedded database's address; the benchmark reads the data it wrote there. */
export async function discoverEmbeddedUrl(log: string): Promise<string> {
  // The logged URL is redacted (`postgresql://user:***@host:port/...`): only host and port are read.
  const m = /serving postgresql:\/\/(?:[^@/\s]*@)?([\d.]+):(\d+)\/postgres/.exec(log);
  if (!m) throw new Error('could not find the embedded database address in the hub log');
  return `postgresql://postgres:postgres@${m[1]}:${m[2]}/postgres?sslmode=disable`;
}
