import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The workspace data beside the repository (`../shared`, where CI checks it out; or
 * SHELFSIGHT_SHARED_DIR): the Grocery Store dataset and the reference backbone. The one
 * place tests and benchmarks learn where it is — product code and its defaults never do.
 */
export const SHARED_DIR = process.env.SHELFSIGHT_SHARED_DIR ?? resolve(__dirname, '..', '..', '..', 'shared');
export const GROCERY_DIR = join(SHARED_DIR, 'datasets', 'grocery-store');
export const REFERENCE_BACKBONE = join(SHARED_DIR, 'models', 'mobilenet_v1_050_224');

/** Whether the dataset and the reference backbone are there. */
export function hasShared(dir = SHARED_DIR): boolean {
  return existsSync(join(dir, 'models', 'mobilenet_v1_050_224', 'backbone.json')) && existsSync(join(dir, 'datasets', 'grocery-store', 'train.txt'));
}

/**
 * For suites that need the workspace data: true when it is there. Missing, it fails the
 * run under `CI` (which must have it, like Mosquitto in test/mosquitto-acl.spec.ts);
 * elsewhere it prints a line saying what is skipped and returns false.
 */
export function requireShared(what: string, { env = process.env, dir = SHARED_DIR }: { env?: NodeJS.ProcessEnv; dir?: string } = {}): boolean {
  if (hasShared(dir)) return true;
  const missing = `the workspace data (Grocery Store dataset, reference backbone) is not in ${dir}`;
  if (env.CI) throw new Error(`CI is set but ${missing}; ${what} need it (check it out there or set SHELFSIGHT_SHARED_DIR)`);
  process.stdout.write(`[tests] ${missing}: ${what} are SKIPPED\n`);
  return false;
}
