import { initRuntime } from '../runtime';
import { silentLogger } from '@shelfsight/common';
import { seededRng } from '../image/distort';
import type { HeadSpec } from '../head/head';
import { headLossAndGrads, tailBackward, tailForward, tailParamCount, type TailSpec } from './tail-math';

/** Loss of tail + head on a batch, and its analytic gradients. */
function lossOf(tail: TailSpec, tp: Float32Array, head: HeadSpec, hp: Float32Array, x: Float32Array, y: number[], mask?: Float32Array) {
  const trace = tailForward(tail, tp, x, y.length);
  const h = headLossAndGrads(head, hp, trace.pooled, y, { labelSmoothing: 0.1, mask });
  return { loss: h.loss, gHead: h.gHead, gTail: tailBackward(tail, tp, trace, h.gPooled) };
}

function random(n: number, rng: () => number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng());
}

describe('tail forward and backward passes', () => {
  beforeAll(async () => {
    await initRuntime(silentLogger);
  });

  it.each([
    ['depthwise + pointwise, MLP head with dropout, l2-normalised', ['depthwise', 'pointwise'] as const, 'mlp' as const],
    ['pointwise only, softmax head', ['pointwise'] as const, 'softmax' as const],
  ])('%s: gradients match central finite differences', (_name, layers, type) => {
    const rng = seededRng(7);
    const c = 4;
    const tail: TailSpec = { hw: [3, 3], channels: c, layers: [...layers] };
    const head: HeadSpec = { type, inputDim: c, numClasses: 3, hidden: 5, normalize: 'l2' };
    const tp = random(tailParamCount(tail), rng, -0.6, 0.9);
    const hpCount = type === 'mlp' ? c * 5 + 5 + 5 * 3 + 3 : c * 3 + 3;
    const hp = random(hpCount, rng, -0.8, 0.8);
    const batch = 3;
    const x = random(batch * 9 * c, rng, 0, 2);
    const y = [0, 2, 1];
    const mask = type === 'mlp' ? Float32Array.from({ length: batch * 5 }, (_, i) => (i % 4 === 1 ? 0 : 4 / 3)) : undefined;
    const { gTail, gHead } = lossOf(tail, tp, head, hp, x, y, mask);
    const eps = 1e-3;
    const check = (params: Float32Array, grad: Float32Array) => {
      let worst = 0;
      let checked = 0;
      for (let i = 0; i < params.length; i++) {
        const keep = params[i] as number;
        params[i] = keep + eps;
        const up = lossOf(tail, tp, head, hp, x, y, mask).loss;
        params[i] = keep - eps;
        const down = lossOf(tail, tp, head, hp, x, y, mask).loss;
        params[i] = keep;
        const numeric = (up - down) / (2 * eps);
        // Float32 forward passes: an absolute floor of 5e-4 on top of 3% relative.
        const err = Math.abs(numeric - (grad[i] as number)) / (5e-4 + 0.03 * Math.abs(numeric));
        worst = Math.max(worst, err);
        if (Math.abs(numeric) > 1e-4) checked++;
      }
      return { worst, checked };
    };
    const t = check(tp, gTail);
    const h = check(hp, gHead);
    // Most parameters matter (a dead tail would pass trivially), and every gradient agrees.
    expect(t.checked).toBeGreaterThan(tp.length / 2);
    expect(h.checked).toBeGreaterThan(hp.length / 2);
    expect(t.worst).toBeLessThan(1);
    expect(h.worst).toBeLessThan(1);
  });

  it('pools to the mean over positions of the ReLU6 output (identity tail)', () => {
    const c = 2;
    const tail: TailSpec = { hw: [2, 2], channels: c, layers: ['pointwise'] };
    const tp = new Float32Array(tailParamCount(tail));
    tp.set([1, 0, 0, 1]); // identity kernel, zero bias
    const x = Float32Array.from([1, 7, 2, -1, 3, 2, 4, 5]);
    expect(Array.from(tailForward(tail, tp, x, 1).pooled)).toEqual([2.5, (6 + 0 + 2 + 5) / 4]);
  });
});
