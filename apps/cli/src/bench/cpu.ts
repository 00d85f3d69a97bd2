import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { Client } from 'pg';

let ticks: number | undefined;

/** Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every common Linux). */
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; undefined when it cannot be read (gone, not Linux). */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, in parentheses): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return undefined;
  }
}

/** CPU of this process so far (user + system seconds). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * CPU used by the PostgreSQL backends serving one database, over a window: backends
 * are found in pg_stat_activity (polled, so connections opened later count too) and
 * read from /proc. Only for a server on this machine (a loopback address); `total()` is
 * undefined otherwise. A backend that has exited counts with its last reading.
 */
export class DatabaseBackendsCpu {
  private readonly baseline = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private started = false;
  private readonly local: boolean;

  constructor(
    private readonly sql: Client,
    databaseUrl: string,
  ) {
    const host = new URL(databaseUrl).hostname.replace(/^\[|\]$/g, '');
    this.local = host === '' || host === 'localhost' || host === '::1' || host.startsWith('127.');
  }

  private get database(): string {
    return this.sql.database ?? '';
  }

  /** Start the window: the backends there now count from their current CPU. */
  async start(): Promise<void> {
    await this.sample();
    for (const [pid, cpu] of this.last) this.baseline.set(pid, cpu);
    this.started = true;
  }

  /** Look for new backends and note every backend's CPU so far (call now and then, and at the end). */
  async sample(): Promise<void> {
    if (!this.local) return;
    const pids = (
      await this.sql.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [this.database])
    ).rows.map((r) => r.pid);
    for (const pid of pids) {
      const cpu = processCpuSeconds(pid);
      if (cpu === undefined) continue; // exited meanwhile
      this.last.set(pid, cpu);
      // A backend first seen after the start was opened during the window: all of its CPU counts.
      if (!this.baseline.has(pid)) this.baseline.set(pid, this.started ? 0 : cpu);
    }
  }

  /** CPU seconds of the backends within the window; undefined when they could not be read (server elsewhere). */
  total(): number | undefined {
    if (!this.local || this.last.size === 0) return undefined;
    let sum = 0;
    for (const [pid, cpu] of this.last) sum += cpu - (this.baseline.get(pid) ?? 0);
    return sum;
  }
}

export interface MachineInfo {
  cpu_model: string;
  cores: number;
  node: string;
  load_average: [number, number, number];
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  const [a, b, d] = loadavg();
  return { cpu_model: c[0]?.model.trim() ?? 'unknown', cores: c.length, node: process.version, load_average: [round2(a!), round2(b!), round2(d!)] };
}

/** The PostgreSQL settings that decide what a commit costs, as the server has them. */
export async function commitSettings(sql: Client): Promise<Record<string, string>> {
  const rows = (
    await sql.query<{ name: string; value: string }>(
      `SELECT name, current_setting(name) AS value FROM unnest(ARRAY['server_version', 'synchronous_commit', 'fsync', 'shared_buffers', 'wal_level']) AS name`,
    )
  ).rows;
  return Object.fromEntries(rows.map((r) => [r.name, r.value]));
}

/** CPU seconds per 1,000 detections, 3 decimals; undefined stays undefined. */
export function per1000(cpuS: number | undefined, detections: number): number | undefined {
  if (cpuS === undefined || detections <= 0) return undefined;
  return Math.round((cpuS / detections) * 1000 * 1000) / 1000;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
