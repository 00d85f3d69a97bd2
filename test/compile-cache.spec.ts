import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

  it('maps stack traces to the TypeScript lines', () => {
    const file = join(dir, 'boom.ts');
    // The type annotation is gone from the compiled line, so only a source map gets the column right.
    const line = `const t: Record<string, Array<number>> = { a: [1] }; if (t.a) console.log(new Error('boom').stack);`;
    writeFileSync(file, `type T = { a: number };\n\n\n${line}\n`);
    expect(run(file, join(dir, 'cache')).out).toContain(`${file}:4:${line.indexOf('new Error') + 1}`);
  });
});
