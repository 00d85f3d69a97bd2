import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { silentLogger } from '@shelfsight/common';
import { InThreadExtractor } from '../extractor';
import { extractFeatures } from '../features';
import { GROCERY_DIR, REFERENCE_BACKBONE, requireShared } from '../../../../test/support/workspace-data';
import { WorkerPoolExtractor } from '../workers/worker-pool';
import { backboneCacheDir, loadRemoteBackbone } from './remote';
import { loadBackbone } from './resolve';
import { BackboneError, OfflineError } from '../errors';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

// Skipped only where the workspace data is missing, and never in CI (which must have it).
const withShared = requireShared('the real-image backbone tests') ? describe : describe.skip;

/** A handful of real photos: two apples, two milk cartons. */
function realImages(): string[] {
  const lines = readFileSync(join(GROCERY_DIR, 'train.txt'), 'utf8').trim().split('\n');
  const pick = (needle: string) => lines.filter((l) => l.includes(needle)).slice(0, 2);
  return [...pick('/Apple/'), ...pick('/Milk/')].map((l) => join(GROCERY_DIR, (l.split(',')[0] as string).trim()));
}

withShared(WorkerPoolExtractor.name, () => {
  it('computes the same 512-d bottlenecks on worker threads as in this thread, from real photos', async () => {
    const images = realImages();
    const backbone = await loadBackbone(REFERENCE_BACKBONE, { logger: silentLogger });
    expect(backbone).toMatchObject({ id: 'mobilenet_v1_050_224', featureDim: 512, format: 'tfjs-graph' });
    expect(backbone.checksum).toMatch(/^[0-9a-f]{64}$/);
    const local = await new InThreadExtractor(backbone).extract(images.map((p) => ({ input: p, source: p })));
    const sut = await WorkerPoolExtractor.start(REFERENCE_BACKBONE, { workers: 2 });
    try {
      expect(sut.backbone.checksum).toBe(backbone.checksum);
      const remote = await sut.extract(images.map((p) => ({ input: p, source: p })));
      for (let i = 0; i < images.length; i++) {
        const a = local[i] as Float32Array;
        const b = remote[i] as Float32Array;
        expect(b).toHaveLength(512);
        let maxDiff = 0;
        for (let k = 0; k < 512; k++) maxDiff = Math.max(maxDiff, Math.abs((a[k] as number) - (b[k] as number)));
        expect(maxDiff).toBeLessThan(1e-3);
      }
      // Same-class photos are closer than cross-class ones (features carry meaning).
      const f = remote as Float32Array[];
      const cos = (x: Float32Array, y: Float32Array) => {
        let d = 0, nx = 0, ny = 0;
        for (let k = 0; k < x.length; k++) {
          d += (x[k] as number) * (y[k] as number);
          nx += (x[k] as number) ** 2;
          ny += (y[k] as number) ** 2;
        }
        return d / Math.sqrt(nx * ny);
      };
      expect(cos(f[0] as Float32Array, f[1] as Float32Array)).toBeGreaterThan(cos(f[0] as Float32Array, f[2] as Float32Array));
    } finally {
      await sut.close();
      backbone.dispose();
    }
  });

  it('reports a corrupt frame by name and keeps the others', async () => {
    const backbone = await loadBackbone(REFERENCE_BACKBONE, { logger: silentLogger });
    const [img] = realImages();
    const out = await extractFeatures(backbone, [
      { input: img as string, source: 'good' },
      { input: Buffer.from('no jpeg here'), source: 'frame-7' },
    ]);
    backbone.dispose();
    expect(out[0]).toBeInstanceOf(Float32Array);
    expect(out[1]).toBeInstanceOf(Error);
    expect((out[1] as Error).message).toMatch(/frame-7/);
  });
});

describe(loadRemoteBackbone.name, () => {
  let cacheDir: string;
  beforeEach(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'shelf-backbones-'));
  });
  afterEach(() => rm(cacheDir, { recursive: true, force: true }));

  it('fails fast in offline mode when the backbone is not cached', async () => {
    await expect(loadRemoteBackbone('imagenet-inception-v3', { offline: true, cacheDir })).rejects.toThrow(OfflineError);
    await expect(loadRemoteBackbone('https://example.invalid/bb/backbone.json', { offline: true, cacheDir })).rejects.toThrow(/offline mode is on/);
  });

  it('keeps a separate cache folder per URL', () => {
    expect(backboneCacheDir('https://a.example/x/backbone.json', cacheDir)).not.toBe(backboneCacheDir('https://b.example/x/backbone.json', cacheDir));
    expect(backboneCacheDir('https://a.example/x/backbone.json#sha256=00', cacheDir)).toBe(backboneCacheDir('https://a.example/x/backbone.json', cacheDir));
  });

  it('refuses an unknown backbone name clearly', async () => {
    await expect(loadBackbone('no-such-backbone', { logger: silentLogger })).rejects.toThrow(BackboneError);
  });
});
