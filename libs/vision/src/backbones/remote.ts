import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChecksumMismatchError, OfflineError, BackboneError } from '../errors';
import { sha256Hex } from '../hash';
import { defaultCacheRoot } from '../cache/bottleneck-cache';
import type { Backbone, BackboneManifest, LoadBackboneOptions } from './backbone';
import { BACKBONE_CATALOGUE, type CatalogueEntry } from './catalogue';
import { readFolderBackbone } from './folder';
import { parseBackboneManifest } from './manifest';
import { bundleChecksum, createTfjsBackbone } from './tfjs-backbone';

interface Pin {
  url: string;
  checksum: string;
  downloadedAt: string;
}

/** `SHELF_OFFLINE=1` (or `--offline`): never touch the network. */
export function offlineFromEnv(): boolean {
  return ['1', 'true', 'yes'].includes((process.env.SHELF_OFFLINE ?? '').toLowerCase());
}

/** Folder a URL or catalogue backbone is cached in. */
export function backboneCacheDir(spec: string, cacheDir = join(defaultCacheRoot(), 'backbones')): string {
  const key = spec.replace(/#.*$/, '');
  const name = BACKBONE_CATALOGUE[key]?.name ?? key.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9_.-]+/g, '_').slice(-60);
  return join(cacheDir, `${name}-${sha256Hex(key).slice(0, 12)}`);
}

/**
 * A backbone from the network: a catalogue name or the URL of a `backbone.json`, with
 * `#sha256=<hex>` to pin the backbone checksum. Downloaded once into the cache; every
 * load verifies the checksum (pinned by the URL or catalogue, else by the first
 * download). Offline, only the cache is consulted.
 */
export async function loadRemoteBackbone(spec: string, opts: LoadBackboneOptions = {}): Promise<Backbone> {
  const offline = opts.offline ?? offlineFromEnv();
  const entry: CatalogueEntry | undefined = BACKBONE_CATALOGUE[spec];
  const [url, fragment] = spec.split('#', 2) as [string, string | undefined];
  const pinned = entry?.sha256 ?? /(?:^|&)sha256=([0-9a-f]{64})/i.exec(fragment ?? '')?.[1]?.toLowerCase();
  const dir = backboneCacheDir(spec, opts.cacheDir);
  const pinFile = join(dir, 'pin.json');

  if (!existsSync(pinFile)) {
    if (offline) throw new OfflineError(`backbone ${spec} is not in the cache (${dir}) and offline mode is on`);
    await download(spec, url, entry, dir, pinned);
    opts.logger?.info('backbone downloaded', { backbone: spec, dir });
  }
  const pin = JSON.parse(await readFile(pinFile, 'utf8')) as Pin;
  const { manifest, bundle } = await readFolderBackbone(dir);
  const checksum = bundleChecksum(bundle);
  if (checksum !== pin.checksum) throw new ChecksumMismatchError(`cached backbone ${dir}`, pin.checksum, checksum);
  if (pinned && checksum !== pinned) throw new ChecksumMismatchError(`backbone ${spec}`, pinned, checksum);
  return createTfjsBackbone(manifest, bundle, spec, checksum);
}

async function download(spec: string, url: string, entry: CatalogueEntry | undefined, dir: string, pinned: string | undefined): Promise<void> {
  const tmp = `${dir}.download-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    let manifest: BackboneManifest;
    let modelUrl: string;
    let query = '';
    if (entry) {
      const { modelUrl: m, query: q, sha256: _s, ...rest } = entry;
      manifest = { ...rest, modelFile: 'model.json' };
      modelUrl = m;
      query = q ? `?${q}` : '';
    } else {
      manifest = parseBackboneManifest(JSON.parse((await fetchBytes(url)).toString('utf8')), url);
      modelUrl = new URL(manifest.modelFile ?? 'model.json', url).toString();
      manifest = { ...manifest, modelFile: 'model.json' };
    }
    const modelBytes = await fetchBytes(modelUrl + query);
    const model = JSON.parse(modelBytes.toString('utf8')) as { weightsManifest?: Array<{ paths: string[] }> };
    if (!Array.isArray(model.weightsManifest)) throw new BackboneError(`${modelUrl}: not a TensorFlow.js model.json`);
    await writeFile(join(tmp, 'model.json'), modelBytes);
    for (const p of model.weightsManifest.flatMap((g) => g.paths)) {
      if (p.includes('..') || p.startsWith('/')) throw new BackboneError(`${modelUrl}: refusing weight path ${p}`);
      await writeFile(join(tmp, p), await fetchBytes(new URL(p, modelUrl).toString() + query));
    }
    await writeFile(join(tmp, 'backbone.json'), JSON.stringify(manifest, null, 2) + '\n');
    const { bundle } = await readFolderBackbone(tmp);
    const checksum = bundleChecksum(bundle);
    if (pinned && checksum !== pinned) throw new ChecksumMismatchError(`backbone ${spec}`, pinned, checksum);
    const pin: Pin = { url: spec, checksum, downloadedAt: new Date().toISOString() };
    await writeFile(join(tmp, 'pin.json'), JSON.stringify(pin, null, 2) + '\n');
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function fetchBytes(url: string): Promise<Buffer> {
  const timeoutMs = Number(process.env.SHELF_DOWNLOAD_TIMEOUT_MS) || 30_000;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new OfflineError(`cannot download ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message} (use a local folder or a cached backbone, or check the network)`);
  }
  if (!res.ok) throw new BackboneError(`cannot download ${url}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}
