import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { InThreadExtractor } from '../extractor';
import { colourImage, meanColourBackbone } from '../testing/fixtures';
import { THUMBNAIL_DISTORTIONS, thumbnailViewRows, type ThumbnailViewOptions } from './augment-thumbnails';

describe(thumbnailViewRows.name, () => {
  let dir: string;
  const backbone = meanColourBackbone();
  const rows = async (images: ThumbnailViewOptions['images'], extra: Partial<ThumbnailViewOptions> = {}) =>
    thumbnailViewRows({ backbone: 'unused', extractor: new InThreadExtractor(backbone), logger: silentLogger, cacheDir: join(dir, 'cache'), images, views: 3, distortions: THUMBNAIL_DISTORTIONS, workDir: dir, ...extra });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shelf-thumbs-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives one training row per thumbnail and distorted view, skips an undecodable thumbnail, and reuses cached views', async () => {
    const images = [
      { id: 'sample:1', label: 'milk', bytes: await colourImage([235, 235, 235], 1) },
      { id: 'sample:2', label: 'juice', bytes: await colourImage([240, 140, 20], 2) },
      { id: 'sample:3', label: 'juice', bytes: Buffer.from('not an image at all') },
    ];
    const r = await rows(images);
    expect(r.rows.labels).toEqual(['juice', 'milk']);
    expect(r.rows.label).toHaveLength(6);
    expect([...r.rows.split]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(r.rows.ids?.filter((id) => id.startsWith('sample:1#aug-'))).toHaveLength(3);
    expect(r.skipped).toEqual([{ id: 'sample:3', error: expect.any(String) }]);
    // The views are distorted: not three copies of one row.
    const milk = [0, 1, 2].map((k) => Array.from(r.rows.x.subarray(k * 3, k * 3 + 3)).join());
    expect(new Set(milk).size).toBeGreaterThan(1);
    // Deterministic per image content and view: the second pass is served by the cache.
    const before = backbone.images;
    const again = await rows(images.slice(0, 2));
    expect(backbone.images).toBe(before);
    expect(Array.from(again.rows.x)).toEqual(Array.from(r.rows.x));
  }, 60_000);

  it('refuses options without any distortion to draw', async () => {
    await expect(rows([], { distortions: {} })).rejects.toThrow(/needs at least one distortion/);
  });
});
