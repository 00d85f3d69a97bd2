import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const ROOT_PACKAGE = 'shelfsight';
let root: string | undefined;

/**
 * The folder of ShelfSight's root package.json (named `shelfsight`), found by walking up
 * from this file: where `deploy/`, `bin/` and the version live, however the code was
 * installed (a clone, `npm link`, node_modules) and from wherever it runs.
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === ROOT_PACKAGE) return (root = dir);
    if (dirname(dir) === dir) throw new Error(`no package.json named ${ROOT_PACKAGE} above ${__dirname}`);
  }
}

/** The version of the ShelfSight package (root package.json). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
