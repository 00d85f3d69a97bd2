import type { LabeledImage } from './dataset';
import { groupedFolds, runKey, whichSetByRun } from './runs';

const img = (path: string, label = 'Apple'): LabeledImage => ({ path, label });

describe('photo runs', () => {
  it('puts consecutive shots of a folder in one run of runLength numbers', () => {
    expect(runKey('/d/Apple/Golden/Golden_001.jpg', 10)).toBe(runKey('/d/Apple/Golden/Golden_009.jpg', 10));
    expect(runKey('/d/Apple/Golden/Golden_009.jpg', 10)).not.toBe(runKey('/d/Apple/Golden/Golden_010.jpg', 10));
    expect(runKey('/d/Apple/Golden/Golden_001.jpg', 10)).not.toBe(runKey('/d/Apple/Red/Golden_001.jpg', 10));
    expect(runKey('/d/x/photo.jpg', 10)).toBe('/d/x/photo');
  });

  it('keeps every run on one side of the hash split and of every fold, and spreads each folder over the folds', () => {
    const images = Array.from({ length: 120 }, (_, i) => img(`/d/${i < 60 ? 'A' : 'B'}/shot_${String(i % 60).padStart(3, '0')}.jpg`, i < 60 ? 'A' : 'B'));
    const folds = groupedFolds(images, 3, 10);
    const sets = images.map((i) => whichSetByRun(i.path, 10, 30, 0));
    const byRun = new Map<string, Set<string>>();
    images.forEach((im, i) => {
      const k = runKey(im.path, 10);
      const s = byRun.get(k) ?? new Set<string>();
      s.add(`${folds[i]}/${sets[i]}`);
      byRun.set(k, s);
    });
    expect(byRun.size).toBe(12);
    for (const s of byRun.values()) expect(s.size).toBe(1);
    for (const label of ['A', 'B']) {
      const mine = folds.filter((_, i) => images[i]?.label === label);
      expect(new Set(mine)).toEqual(new Set([0, 1, 2]));
    }
  });
});
