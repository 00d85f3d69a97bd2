import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `shelf` as npm installs it: node_modules/shelfsight is a link to the package (npm link,
 * a workspace) and node_modules/.bin/shelf a relative symlink to its bin/shelf.js, run
 * through the file's `#!/usr/bin/env node` line — not `node bin/shelf.js`.
 */
describe('shelf through an npm bin symlink', () => {
  let dir: string;
  let shelf: string;

  const run = (...args: string[]) =>
    new Promise<Run>((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, DEVICE_ID: '', SITE: '' };
      execFile(shelf, args, { cwd: dir, env, timeout: 120_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'shelfsight-bin-'));
    mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(ROOT, join(dir, 'node_modules', 'shelfsight'), 'dir');
    shelf = join(dir, 'node_modules', '.bin', 'shelf');
    symlinkSync('../shelfsight/bin/shelf.js', shelf);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the help and exits 0', async () => {
    const r = await run('--help');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('Usage: shelf [options] [command]');
    for (const command of ['agent', 'hub', 'start', 'train']) expect(r.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('prints the package version and exits 0', async () => {
    expect(await run('--version')).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('marks required settings in a command help and names flag and variable when one is missing', async () => {
    const help = await run('agent', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--device-id <value>\s+device id[^]*?\[env\s+DEVICE_ID\]\s+\(required\)/);
    expect(help.stdout).toMatch(/--http-upload \[bool\]/);
    const missing = await run('agent', '--site', 'store-1', '--http-upload');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--device-id / DEVICE_ID is required: device id, unique in the fleet');
  });

  it('exits non-zero on an unknown option', async () => {
    const r = await run('--no-such-option');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown option '--no-such-option'");
  });
});
