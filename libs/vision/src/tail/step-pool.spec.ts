import { silentLogger } from '@shelfsight/common';
import { seededRng } from '../image/distort';
import { initRuntime } from '../runtime';
import type { HeadSpec } from '../head/head';
import { quantiseActivation } from '../cache/activation-cache';
import { packActivations } from './activation-set';
import { TailStepPool } from './step-pool';
import { tailParamCount, type TailSpec } from './tail-math';

describe(TailStepPool.name, () => {
  beforeAll(() => initRuntime(silentLogger));

  it('adds up the same gradients and pooled features on 2 worker threads as in this thread', async () => {
    const rng = seededRng(3);
    const spec: TailSpec = { hw: [3, 3], channels: 4, layers: ['depthwise', 'pointwise'] };
    const headSpec: HeadSpec = { type: 'mlp', inputDim: 4, numClasses: 3, hidden: 5, normalize: 'l2' };
    const size = 3 * 3 * 4;
    const set = packActivations(
      Array.from({ length: 10 }, (_, i) => ({ a: quantiseActivation(Float32Array.from({ length: size }, () => rng() * 6)), y: i % 3, g: i })),
      size,
    );
    const tail = Float32Array.from({ length: tailParamCount(spec) }, () => rng() - 0.3);
    const head = Float32Array.from({ length: 4 * 5 + 5 + 5 * 3 + 3 }, () => rng() - 0.5);
    const rows = Int32Array.from([7, 1, 4, 9, 0, 3, 2]);
    const mask = Float32Array.from({ length: rows.length * 5 }, (_, i) => (i % 3 ? 2 : 0));
    const input = { tail, head, rows, mask, labelSmoothing: 0.1, firstTrainable: 0 };
    const local = await TailStepPool.start(set, spec, headSpec, 1);
    const sut = await TailStepPool.start(set, spec, headSpec, 2);
    try {
      expect(sut.size).toBe(2);
      const [a, b] = [await local.step(input), await sut.step(input)];
      expect(b.count).toBe(7);
      expect(b.lossSum).toBeCloseTo(a.lossSum, 4);
      b.gTail.forEach((v, i) => expect(v).toBeCloseTo(a.gTail[i] as number, 4));
      b.gHead.forEach((v, i) => expect(v).toBeCloseTo(a.gHead[i] as number, 4));
      expect(Math.max(...Array.from(a.gTail, Math.abs))).toBeGreaterThan(1e-3);
      const [pa, pb] = [await local.pooled(tail, rows), await sut.pooled(tail, rows)];
      expect(Array.from(pb)).toEqual(Array.from(pa));
    } finally {
      await Promise.all([local.close(), sut.close()]);
    }
  }, 60_000);
});
