import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeColourDataset } from '../testing/fixtures';
import { DatasetError } from '../errors';
import { loadDataset, splitCsvLine, splitDataset, whichSet } from './dataset';

describe(whichSet.name, () => {
  it('keeps every existing image in its set when images are added', () => {
    const before = Array.from({ length: 500 }, (_, i) => `img_${i}.jpg`);
    const after = [...before, ...Array.from({ length: 300 }, (_, i) => `new_${i}.jpg`)];
    const setsBefore = new Map(before.map((f) => [f, whichSet(f, 10, 10)]));
    const setsAfter = new Map(after.map((f) => [f, whichSet(f, 10, 10)]));
    for (const f of before) expect(setsAfter.get(f)).toBe(setsBefore.get(f));
  });

  it('depends on the file name only, not the folder, and ignores _nohash_ suffixes', () => {
    expect(whichSet('/a/b/milk_001.jpg', 10, 10)).toBe(whichSet('/elsewhere/milk_001.jpg', 10, 10));
    const names = Array.from({ length: 200 }, (_, i) => `photo${i}`);
    for (const n of names) expect(whichSet(`${n}_nohash_aug3.jpg`, 10, 10)).toBe(whichSet(`${n}_nohash_x.jpg`, 10, 10));
  });

  it('splits in roughly the requested proportions', () => {
    const counts = { training: 0, validation: 0, testing: 0 };
    for (let i = 0; i < 4000; i++) counts[whichSet(`frame-${i}.jpg`, 10, 20)]++;
    expect(counts.validation / 4000).toBeGreaterThan(0.08);
    expect(counts.validation / 4000).toBeLessThan(0.12);
    expect(counts.testing / 4000).toBeGreaterThan(0.17);
    expect(counts.testing / 4000).toBeLessThan(0.23);
  });
});

describe(loadDataset.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shelf-dataset-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads class folders', async () => {
    await writeColourDataset(join(dir, 'data'), { milk: [240, 240, 240], juice: [240, 140, 20] }, 3);
    const ds = await loadDataset(join(dir, 'data'));
    expect(ds.labels).toEqual(['juice', 'milk']);
    expect(ds.images).toHaveLength(6);
    expect(ds.images.filter((i) => i.label === 'milk').every((i) => i.path.includes('/milk/'))).toBe(true);
  });

  it('reads a CSV with image,label and paths relative to the CSV', async () => {
    await writeFile(join(dir, 'list.csv'), 'image,label\nimgs/a.jpg,milk\n"imgs/b, c.jpg",juice\n/abs/d.jpg,milk\n');
    const ds = await loadDataset(join(dir, 'list.csv'));
    expect(ds.images).toEqual([
      { path: join(dir, 'imgs/a.jpg'), label: 'milk' },
      { path: join(dir, 'imgs/b, c.jpg'), label: 'juice' },
      { path: '/abs/d.jpg', label: 'milk' },
    ]);
    expect(ds.labels).toEqual(['juice', 'milk']);
  });

  it('refuses a CSV without the image,label header', async () => {
    await writeFile(join(dir, 'bad.csv'), 'path,class\na.jpg,milk\n');
    await expect(loadDataset(join(dir, 'bad.csv'))).rejects.toThrow(DatasetError);
  });

  it('splits a dataset with the same rule as whichSet', async () => {
    await writeColourDataset(join(dir, 'data'), { milk: [240, 240, 240] }, 20);
    const ds = await loadDataset(join(dir, 'data'));
    const s = splitDataset(ds, 25, 25);
    expect(s.training.length + s.validation.length + s.testing.length).toBe(20);
    for (const img of s.validation) expect(whichSet(img.path, 25, 25)).toBe('validation');
  });
});

describe(splitCsvLine.name, () => {
  it('handles quotes and escaped quotes', () => {
    expect(splitCsvLine('a,"b,c","d ""e"""')).toEqual(['a', 'b,c', 'd "e"']);
  });
});
