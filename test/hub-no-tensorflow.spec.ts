import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(__dirname, '..');

/** The hub verifies, evaluates and re-scores heads in plain TypeScript: registering a model never loads TensorFlow. */
describe('hub process without TensorFlow', () => {
  it('registers a model over HTTP with no @tensorflow module in require.cache', async () => {
    const { stdout } = await run(process.execPath, ['-r', './bin/register.js', 'test/support/hub-tensorflow-probe.ts'], { cwd: ROOT, timeout: 120_000 });
    const last = JSON.parse(stdout.trim().split('\n').pop() as string) as { status: number; releasable: boolean; modules: number; tensorflow: string[] };
    expect(last.status).toBe(201);
    expect(last.releasable).toBe(true);
    expect(last.modules).toBeGreaterThan(100);
    expect(last.tensorflow).toEqual([]);
  });
});
