import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { computeBottlenecks } from './bottlenecks';
import { BottleneckCache } from './cache/bottleneck-cache';
import { CENTER_VIEW, FLIP_VIEW, distortedView } from './data/views';
import { InThreadExtractor } from './extractor';
import { colourImage, meanColourBackbone } from './testing/fixtures';

describe(computeBottlenecks.name, () => {
  let dir: string;
  let paths: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shelf-bottlenecks-'));
    paths = [];
    for (let i = 0; i < 5; i++) {
      const p = join(dir, `img-${i}.jpg`);
      await writeFile(p, await colourImage([40 * i, 100, 200 - 30 * i], i));
      paths.push(p);
    }
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('uses the cache on the second run: the backbone is not called again', async () => {
    const backbone = meanColourBackbone();
    const sut = new InThreadExtractor(backbone);
    const cache = new BottleneckCache(join(dir, 'cache'), backbone, backbone.featureDim);
    const views = [CENTER_VIEW, FLIP_VIEW, distortedView({ brightness: 30, crop: 10 }, 0)];
    const requests = paths.map((path) => ({ path, views }));

    const first = await computeBottlenecks(requests, sut, cache);
    expect(first.computed).toBe(15);
    expect(first.cacheHits).toBe(0);
    expect(backbone.images).toBe(15);

    const callsAfterFirst = backbone.calls;
    const second = await computeBottlenecks(requests, sut, cache);
    expect(backbone.calls).toBe(callsAfterFirst);
    expect(second.computed).toBe(0);
    expect(second.cacheHits).toBe(15);
    for (const p of paths) expect(Array.from(second.features.get(p)?.get('center') ?? [])).toEqual(Array.from(first.features.get(p)?.get('center') ?? []));
  });

  it('keys the cache by content: a renamed copy hits, another backbone misses', async () => {
    const backbone = meanColourBackbone();
    const cache = new BottleneckCache(join(dir, 'cache'), backbone, 3);
    await computeBottlenecks([{ path: paths[0] as string, views: [CENTER_VIEW] }], new InThreadExtractor(backbone), cache);
    const copy = join(dir, 'renamed.jpg');
    await writeFile(copy, await colourImage([0, 100, 200], 0));
    const again = await computeBottlenecks([{ path: copy, views: [CENTER_VIEW] }], new InThreadExtractor(backbone), cache);
    expect(again.cacheHits).toBe(1);

    const other = meanColourBackbone('other-backbone', 'd'.repeat(64));
    const otherCache = new BottleneckCache(join(dir, 'cache'), other, 3);
    const miss = await computeBottlenecks([{ path: copy, views: [CENTER_VIEW] }], new InThreadExtractor(other), otherCache);
    expect(miss.cacheHits).toBe(0);
    expect(other.images).toBe(1);
  });

  it('skips and reports a corrupt image without aborting the others', async () => {
    const corrupt = join(dir, 'corrupt.jpg');
    await writeFile(corrupt, Buffer.concat([(await colourImage([1, 2, 3], 9)).subarray(0, 30), Buffer.alloc(64, 1)]));
    const missing = join(dir, 'missing.jpg');
    const backbone = meanColourBackbone();
    const warnings: Array<Record<string, unknown> | undefined> = [];
    const logger = { ...silentLogger, warn: (_m: string, f?: Record<string, unknown>) => void warnings.push(f) };
    const r = await computeBottlenecks(
      [...paths, corrupt, missing].map((path) => ({ path, views: [CENTER_VIEW] })),
      new InThreadExtractor(backbone),
      undefined,
      { logger },
    );
    expect(r.features.size).toBe(5);
    expect(r.failed.map((f) => f.path).sort()).toEqual([corrupt, missing].sort());
    expect(r.failed.find((f) => f.path === corrupt)?.error).toMatch(/corrupt\.jpg/);
    expect(warnings.map((w) => w?.path).sort()).toEqual([corrupt, missing].sort());
  });
});
