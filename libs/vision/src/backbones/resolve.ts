import { existsSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { createLogger } from '@shelfsight/common';
import { BackboneError } from '../errors';
import { initRuntime } from '../runtime';
import type { Backbone, LoadBackboneOptions } from './backbone';
import { DEFAULT_BACKBONE, isBuiltinBackbone, loadBuiltinBackbone } from './builtin';
import { loadFolderBackbone } from './folder';

export type { LoadBackboneOptions };

/**
 * Resolve `--backbone`: a built-in name (`nsfw-mobilenet-v2`, `nsfw-inception-v3`), a
 * folder (or file) with `backbone.json`, a catalogue name, or an http(s) URL of a
 * `backbone.json` (optionally pinned with `#sha256=<hex>`).
 */
export async function loadBackbone(spec: string = DEFAULT_BACKBONE, opts: LoadBackboneOptions = {}): Promise<Backbone> {
  const logger = opts.logger ?? createLogger('vision');
  await initRuntime(logger);
  const started = Date.now();
  const backbone = await resolveSpec(spec, opts);
  logger.info('backbone loaded', { backbone: backbone.id, checksum: backbone.checksum.slice(0, 12), ms: Date.now() - started });
  return backbone;
}

async function resolveSpec(spec: string, opts: LoadBackboneOptions): Promise<Backbone> {
  if (isBuiltinBackbone(spec)) return loadBuiltinBackbone(spec);
  if (/^https?:\/\//i.test(spec) || isCatalogueName(spec)) {
    const { loadRemoteBackbone } = await import('./remote');
    return loadRemoteBackbone(spec, opts);
  }
  const path = resolvePath(spec);
  if (existsSync(path)) return loadFolderBackbone(path);
  throw new BackboneError(
    `unknown backbone "${spec}": not a built-in (${['nsfw-mobilenet-v2', 'nsfw-inception-v3'].join(', ')}), ` +
      `not a catalogue name, not an existing folder with backbone.json, not an http(s) URL`,
  );
}

function isCatalogueName(spec: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { BACKBONE_CATALOGUE } = require('./catalogue') as typeof import('./catalogue');
  return Object.prototype.hasOwnProperty.call(BACKBONE_CATALOGUE, spec);
}

export { DEFAULT_BACKBONE };
