import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REGISTER = resolve(__dirname, '..', 'bin', 'register.js');

/** Runs a TypeScript file through the launcher's require hook in a fresh process. */
function run(file: string, cacheDir: string): { out: string; compilerLoaded: boolean } {
  const probe = `process.on('exit', () => process.stdout.write('|' + Object.keys(require.cache).some((k) => k.includes('@swc/core') && !k.endsWith('package.json'))));`;
  const out = execFileSync(process.execPath, ['-r', REGISTER, '-e', `${probe} require(${JSON.stringify(file)})`], {
    env: { ...process.env, SHELF_COMPILE_CACHE: cacheDir },
    encoding: 'utf8',
  });
  const [printed = '', loaded] = out.split('|');
  return { out: printed, compilerLoaded: loaded === 'true' };
}

describe('TypeScript launcher (bin/register.js)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'shelf-compile-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('compiles once, then runs from the cache without loading the compiler, and never serves stale code', () => {
    const cache = join(dir, 'cache');
    const file = join(dir, 'hello.ts');
    writeFileSync(file, `const n: number = 1; class A { @((t: unknown) => t) m(): void {} } process.stdout.write(String(n) + typeof A);\n`);

    expect(run(file, cache)).toEqual({ out: '1function', compilerLoaded: true });
    expect(run(file, cache)).toEqual({ out: '1function', compilerLoaded: false });

    writeFileSync(file, `const n: number = 2; process.stdout.write(String(n));\n`);
    expect(run(file, cache)).toEqual({ out: '2', compilerLoaded: true });
    expect(readdirSync(cache).length).toBeGreaterThan(0);
  });

  it('still runs when the cache cannot be written', () => {
    const file = join(dir, 'hello.ts');
    writeFileSync(file, `process.stdout.write('ok' as string);\n`);
    const blocked = join(dir, 'not-a-dir');
    writeFileSync(blocked, 'a file where the cache directory would go');
    expect(run(file, blocked).out).toBe('ok');
    expect(run(file, blocked).out).toBe('ok');
  });

  it('--warm compiles the sources and removes only stale entries it did not use', () => {
    const cache = join(dir, 'cache');
    const stale = join(cache, 'ab', `ab${'0'.repeat(62)}.js`);
    const fresh = join(cache, 'cd', `cd${'0'.repeat(62)}.js`);
    const foreign = join(cache, 'ab', 'notes.txt');
    mkdirSync(join(cache, 'ab'), { recursive: true });
    mkdirSync(join(cache, 'cd'), { recursive: true });
    for (const f of [stale, fresh, foreign]) writeFileSync(f, '// x');
    const old = new Date(Date.now() - 40 * 86_400_000);
    utimesSync(stale, old, old);
    utimesSync(foreign, old, old);

    const out = execFileSync(process.execPath, [REGISTER, '--warm'], { env: { ...process.env, SHELF_COMPILE_CACHE: cache }, encoding: 'utf8' });
    expect(out).toMatch(/compiled \d+ TypeScript sources .* removed 1 stale entries/);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(foreign)).toBe(true);
    // Entries the sources still use are kept however old they are.
    const warmed = readdirSync(cache)
      .filter((d) => /^[0-9a-f]{2}$/.test(d))
      .flatMap((d) => readdirSync(join(cache, d)).map((f) => join(cache, d, f)))
      .filter((f) => f.endsWith('.js') && f !== fresh);
    expect(warmed.length).toBeGreaterThan(100);
    for (const f of warmed) utimesSync(f, old, old);
    const again = execFileSync(process.execPath, [REGISTER, '--warm'], { env: { ...process.env, SHELF_COMPILE_CACHE: cache }, encoding: 'utf8' });
    expect(again).toMatch(/removed 0 stale entries/);
    expect(warmed.every((f) => existsSync(f))).toBe(true);
  });

  it('maps stack traces to the TypeScript lines', () => {
    const file = join(dir, 'boom.ts');
    // The type annotation is gone from the compiled line, so only a source map gets the column right.
    const line = `const t: Record<string, Array<number>> = { a: [1] }; if (t.a) console.log(new Error('boom').stack);`;
    writeFileSync(file, `type T = { a: number };\n\n\n${line}\n`);
    expect(run(file, join(dir, 'cache')).out).toContain(`${file}:4:${line.indexOf('new Error') + 1}`);
  });
});
