import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { requireShared } from './support/workspace-data';

const ROOT = join(__dirname, '..');

/** Every .ts / .js file under `dir` (relative to the repository), skipping node_modules and generated code. */
function sources(dir: string): string[] {
  return (readdirSync(join(ROOT, dir), { recursive: true }) as string[])
    .map((f) => join(dir, f))
    .filter((f) => /\.(ts|js)$/.test(f) && !f.split(sep).some((part) => part === 'node_modules' || part === 'generated'));
}

const productCode = (): string[] =>
  ['apps', 'libs'].flatMap((top) =>
    readdirSync(join(ROOT, top))
      .flatMap((pkg) => sources(join(top, pkg, 'src')))
      .filter((f) => !f.endsWith('.spec.ts') && !f.split(sep).includes('testing')),
  );

describe('workspace data', () => {
  it('is unknown to product code: apps/*/src and libs/*/src (specs and testing folders aside) never mention ../shared', () => {
    const files = productCode();
    expect(files.length).toBeGreaterThan(50);
    const offenders = files.filter((f) => /\.\.\/shared\b|shared\/(datasets|models)\b/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('is located by one test-support module only', () => {
    const files = [...productCode(), ...sources('test'), ...sources('scripts'), ...sources('bin'), ...['apps', 'libs'].flatMap((t) => sources(t))];
    // (This spec names the patterns it looks for, so it is left out.)
    const knowing = [...new Set(files)].filter((f) => join(ROOT, f) !== __filename).filter((f) => /\.\.\/shared\b|shared\/(datasets|models)\b|'\.\.', 'shared'|'shared'\)/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(knowing.map((f) => relative(ROOT, join(ROOT, f)))).toEqual([join('test', 'support', 'workspace-data.ts')]);
  });

  describe(requireShared.name, () => {
    let empty: string;
    beforeAll(() => (empty = mkdtempSync(join(tmpdir(), 'shelfsight-no-shared-'))));
    afterAll(() => rmSync(empty, { recursive: true, force: true }));

    it('fails the run under CI when the data is missing', () => {
      expect(() => requireShared('the real-image tests', { env: { CI: 'true' }, dir: empty })).toThrow(/CI is set but the workspace data .* is not in .*; the real-image tests need it/);
    });

    it('elsewhere says what is skipped and returns false', () => {
      const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
      try {
        expect(requireShared('the real-image tests', { env: {}, dir: empty })).toBe(false);
        expect(write).toHaveBeenCalledWith(expect.stringContaining('the real-image tests are SKIPPED'));
      } finally {
        write.mockRestore();
      }
    });
  });
});
