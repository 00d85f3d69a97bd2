import { readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

/**
 * A CPU profile of this process's main thread over a benchmark's timed window only (not its
 * set-up), for `--profile <file>`: open the file in Chrome DevTools (Performance) or speedscope.
 */
export class WindowProfile {
  private session?: Session;

  constructor(private readonly file: string | undefined) {}

  async start(): Promise<void> {
    if (!this.file) return;
    this.session = new Session();
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.start');
  }

  /** Stop and write the profile; where it went, or undefined when not profiling. */
  async stop(): Promise<string | undefined> {
    if (!this.session || !this.file) return undefined;
    const { profile } = await this.session.post('Profiler.stop');
    this.session.disconnect();
    this.session = undefined;
    await writeFile(this.file, JSON.stringify(profile));
    return this.file;
  }
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** `node_modules/aedes/…` → aedes, `apps/hub/src/ingest/…` → apps/hub/ingest, `node:net` → node:net; undefined for native frames. */
function packageOf(url: string): string | undefined {
  if (!url) return undefined;
  if (url.startsWith('node:')) return url.replace(/^node:internal\/([^/]+).*$/, 'node:$1');
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  const own = /\/(apps|libs)\/([^/]+)\/src\/([^/]+)/.exec(url);
  return own ? `${own[1]}/${own[2]}/${own[3]!.replace(/\.ts$/, '')}` : url;
}

/**
 * A V8 CPU profile's time by package: each sample goes to the package (or our module) of the
 * innermost frame on its stack that is not Node's own, so that a socket write counts for the
 * code that asked for it; samples with no JavaScript frame keep their name ((garbage collector), (idle)).
 */
export async function cpuProfileByPackage(file: string, top: number): Promise<Array<{ package: string; ms: number; share: number }>> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as { nodes: CpuProfileNode[]; samples: number[]; timeDeltas: number[] };
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const owner = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const known = owner.get(id);
    if (known !== undefined) return known;
    // The innermost frame of a package or of our code; Node's own (node:…) only when there is none.
    let at: number | undefined = id;
    let found: string | undefined;
    let nodeInternal: string | undefined;
    while (at !== undefined && found === undefined) {
      const pkg = packageOf(byNode.get(at)?.callFrame.url ?? '');
      if (pkg?.startsWith('node:')) nodeInternal ??= pkg;
      else found = pkg;
      at = parent.get(at);
    }
    const name = found ?? nodeInternal ?? (byNode.get(id)?.callFrame.functionName || '(native)');
    owner.set(id, name);
    return name;
  };
  const time = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const key = ownerOf(id);
    time.set(key, (time.get(key) ?? 0) + us);
    total += us;
  });
  return [...time]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ package: name, ms: Math.round(us / 1000), share: total > 0 ? Math.round((us / total) * 1000) / 1000 : 0 }));
}

/**
 * Where a V8 CPU profile (.cpuprofile, as `node --cpu-prof` or WindowProfile writes it) spent
 * its time: the `top` functions by self time, ms and share of the samples' total.
 */
export async function cpuProfileTop(file: string, top: number): Promise<Array<{ fn: string; self_ms: number; share: number }>> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as { nodes: CpuProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const f = byNode.get(id)?.callFrame;
    const where = f?.url ? ` ${f.url.replace(/^.*\/(node_modules\/|apps\/|libs\/)/, '$1')}:${f.lineNumber + 1}` : '';
    const key = `${f?.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ fn, self_ms: Math.round(us / 1000), share: total > 0 ? Math.round((us / total) * 1000) / 1000 : 0 }));
}
