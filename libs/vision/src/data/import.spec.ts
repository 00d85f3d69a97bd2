import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { colourImage } from '../testing/fixtures';
import { loadDataset, whichSet } from './dataset';
import { importDataset } from './import';

describe(importDataset.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shelf-import-'));
    await mkdir(join(dir, 'train_img'));
    for (let i = 0; i < 5; i++) await writeFile(join(dir, 'train_img', `img${i}.png`), await colourImage([20 * i, 100, 100], i, 'png'));
    await writeFile(join(dir, 'train.csv'), 'image_id,label\nimg0,milk\nimg1,milk\nimg2,milk\nimg3,juice\nimg4,juice\nimg9,juice\n');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('turns a CSV of image ids and labels into class folders, reporting missing images', async () => {
    const r = await importDataset({ csv: join(dir, 'train.csv'), images: join(dir, 'train_img'), out: join(dir, 'out'), imageColumn: 'image_id', labelColumn: 'label', mode: 'copy' });
    expect(r).toMatchObject({ imported: 5, augmented: 0, missing: ['img9'], classes: { juice: 2, milk: 3 } });
    expect((await readdir(join(dir, 'out', 'milk'))).sort()).toEqual(['img0.png', 'img1.png', 'img2.png']);
    const ds = await loadDataset(join(dir, 'out'));
    expect(ds.labels).toEqual(['juice', 'milk']);
  });

  it('balances classes with distorted copies that stay in their original split', async () => {
    const r = await importDataset({ csv: join(dir, 'train.csv'), images: join(dir, 'train_img'), out: join(dir, 'out'), imageColumn: 'image_id', labelColumn: 'label', mode: 'link', balance: 6 });
    expect(r.augmented).toBe(4 + 3);
    const juice = (await readdir(join(dir, 'out', 'juice'))).sort();
    expect(juice).toHaveLength(6);
    for (const f of juice.filter((n) => n.includes('_nohash_'))) {
      const original = f.replace(/_nohash_.*$/, '.png');
      expect(juice).toContain(original);
      expect(whichSet(join(dir, 'out', 'juice', f), 10, 10)).toBe(whichSet(join(dir, 'out', 'juice', original), 10, 10));
    }
  });
});
