import type { ScoredCategory } from '@shelfsight/contracts';
import type { FrameClassification } from '@shelfsight/vision';
import { HeadHolder, HeadSwapError, type CandidateView, type ShadowableHead } from './head-holder';
import { ShadowTally } from './shadow-tally';

/**
 * A head whose category is a function of the embedding's first value: `embedding[0]` is the
 * frame number, so two heads agree exactly where `pick` says so. `classify` can be held open
 * to simulate a frame in progress during a swap.
 */
class TestHead implements ShadowableHead {
  classifyCalls = 0;
  featureCalls = 0;
  disposed = 0;
  gate: Promise<void> | undefined;
  failFeatures = false;

  constructor(
    readonly modelVersion: string,
    private readonly pick: (frame: number) => ScoredCategory,
    readonly backboneId = 'bb-1',
  ) {}

  async classify(image: Buffer): Promise<FrameClassification> {
    this.classifyCalls += 1;
    const frame = image.readUInt32BE(0);
    await this.gate;
    if (this.disposed) throw new Error(`${this.modelVersion} used after dispose`);
    const top = this.pick(frame);
    return { ...top, topK: [top], latencyMs: 1, embedding: Float32Array.of(frame) };
  }

  classifyFeatures(features: Float32Array): { topK: ScoredCategory[] } {
    this.featureCalls += 1;
    if (this.failFeatures) throw new Error('head weights are garbage');
    if (this.disposed) throw new Error(`${this.modelVersion} used after dispose`);
    return { topK: [this.pick(features[0] as number)] };
  }

  dispose(): void {
    this.disposed += 1;
  }
}

const frame = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const milk = (): ScoredCategory => ({ category: 'milk', confidence: 0.9 });
/** Says bread for even frames (disagrees with `milk` there), milk with 0.5 for odd ones. */
const breadOnEven = (n: number): ScoredCategory => (n % 2 === 0 ? { category: 'bread', confidence: 0.7 } : { category: 'milk', confidence: 0.5 });

describe(HeadHolder.name, () => {
  let active: TestHead;
  let sut: HeadHolder;

  beforeEach(() => {
    active = new TestHead('v1', milk);
    sut = new HeadHolder(active);
  });

  it('classifies with the active head and names its version', async () => {
    const r = await sut.classify(frame(1));
    expect(r).toMatchObject({ modelVersion: 'v1', classification: { category: 'milk' } });
    expect(sut.modelVersion).toBe('v1');
    expect(sut.candidate).toBeUndefined();
  });

  it('shadows a candidate on the active head’s embeddings for N frames, then reports the comparison', async () => {
    const cand = new TestHead('v2', breadOnEven);
    sut.setCandidate(cand, 4);
    const complete: CandidateView[] = [];
    sut.on('shadow-complete', (v: CandidateView) => complete.push(v));

    for (let n = 0; n < 3; n++) expect((await sut.classify(frame(n))).modelVersion).toBe('v1');
    expect(sut.candidate).toMatchObject({ modelVersion: 'v2', state: 'shadowing', shadowFrames: 3, shadowTarget: 4 });
    await sut.classify(frame(3));
    await sut.classify(frame(4)); // after the target: not shadowed any more

    // The backbone (classify) ran on the active head only; the candidate scored embeddings.
    expect(active.classifyCalls).toBe(5);
    expect(cand.classifyCalls).toBe(0);
    expect(cand.featureCalls).toBe(4);
    expect(complete).toHaveLength(1);
    expect(complete[0]?.shadow).toEqual({
      frames: 4,
      agreement: 0.5,
      activeMeanConfidence: 0.9,
      candidateMeanConfidence: 0.6,
      histogram: { active: [0, 0, 0, 0, 0, 0, 0, 0, 0, 4], candidate: [0, 0, 0, 0, 0, 2, 0, 2, 0, 0] },
      categories: { bread: { active: 0, candidate: 2 }, milk: { active: 4, candidate: 2 } },
      changes: [{ from: 'milk', to: 'bread', frames: 2 }],
    });
    expect(sut.candidate).toMatchObject({ state: 'verified', shadowFrames: 4 });
  });

  it('activates the candidate for the next frame while a frame in progress finishes on the old head', async () => {
    const cand = new TestHead('v2', breadOnEven);
    sut.setCandidate(cand, 0);
    let open!: () => void;
    active.gate = new Promise((r) => (open = r));
    const inProgress = sut.classify(frame(2));

    expect(sut.activate()).toEqual({ modelVersion: 'v2', previous: 'v1' });
    const next = await sut.classify(frame(2));
    open();

    expect(next).toMatchObject({ modelVersion: 'v2', classification: { category: 'bread' } });
    expect(await inProgress).toMatchObject({ modelVersion: 'v1', classification: { category: 'milk' } });
    expect(sut.previousVersion).toBe('v1');
    expect(active.disposed).toBe(0); // kept for rollback
  });

  it('rolls back to the previous head and disposes the one it leaves, once its frames are done', async () => {
    const cand = new TestHead('v2', breadOnEven);
    sut.setCandidate(cand, 0);
    sut.activate();
    let open!: () => void;
    cand.gate = new Promise((r) => (open = r));
    const inProgress = sut.classify(frame(4));

    expect(sut.rollback()).toEqual({ modelVersion: 'v1', from: 'v2' });
    expect(cand.disposed).toBe(0);
    expect((await sut.classify(frame(4))).modelVersion).toBe('v1');
    open();
    expect(await inProgress).toMatchObject({ modelVersion: 'v2' });
    await sut.settled();
    expect(cand.disposed).toBe(1);
    expect(sut.previousVersion).toBeUndefined();
    expect(() => sut.rollback()).toThrow(HeadSwapError);
  });

  it('keeps one previous head: a second activation disposes the oldest', async () => {
    const v2 = new TestHead('v2', milk);
    const v3 = new TestHead('v3', milk);
    sut.setCandidate(v2, 0);
    sut.activate();
    sut.setCandidate(v3, 0);
    sut.activate();
    await sut.settled();
    expect([active.disposed, v2.disposed, v3.disposed]).toEqual([1, 0, 0]);
    expect(sut.previousVersion).toBe('v2');
  });

  it('refuses a candidate for another backbone and an activation without a candidate', () => {
    expect(() => sut.setCandidate(new TestHead('v2', milk, 'bb-other'), 1)).toThrow(/backbone bb-other/);
    expect(() => sut.activate()).toThrow(/no candidate/);
  });

  it('replacing a candidate disposes the one replaced', async () => {
    const v2 = new TestHead('v2', milk);
    sut.setCandidate(v2, 3);
    sut.setCandidate(new TestHead('v2b', milk), 3);
    await sut.settled();
    expect(v2.disposed).toBe(1);
    expect(sut.candidate?.modelVersion).toBe('v2b');
  });

  it('drops a candidate that fails while shadowing; the frame is classified all the same', async () => {
    const cand = new TestHead('v2', milk);
    cand.failFeatures = true;
    sut.setCandidate(cand, 5);
    const failed: string[] = [];
    sut.on('candidate-failed', (e: { modelVersion: string }) => failed.push(e.modelVersion));

    expect(await sut.classify(frame(1))).toMatchObject({ modelVersion: 'v1', classification: { category: 'milk' } });
    await sut.settled();
    expect(failed).toEqual(['v2']);
    expect(sut.candidate).toBeUndefined();
    expect(cand.disposed).toBe(1);
  });

  it('disposes every head it owns on dispose, and never one it was lent', async () => {
    const lent = new TestHead('lent', milk);
    const holder = new HeadHolder(lent, { ownsActive: false });
    const v2 = new TestHead('v2', milk);
    const v3 = new TestHead('v3', milk);
    holder.setCandidate(v2, 0);
    holder.activate();
    holder.setCandidate(v3, 1);
    await holder.dispose();
    expect([lent.disposed, v2.disposed, v3.disposed]).toEqual([0, 1, 1]);
    await expect(holder.classify(frame(1))).rejects.toThrow(/closed/);
  });
});

describe(ShadowTally.name, () => {
  it('puts a confidence of exactly 1 into the last bin and 0 into the first', () => {
    const sut = new ShadowTally();
    sut.add({ category: 'a', confidence: 1 }, { category: 'a', confidence: 0 });
    expect(sut.stats().histogram).toEqual({ active: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], candidate: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] });
    expect(sut.stats().agreement).toBe(1);
  });

  it('reports zeros, not NaN, before any frame', () => {
    expect(new ShadowTally().stats()).toMatchObject({ frames: 0, agreement: 0, activeMeanConfidence: 0, candidateMeanConfidence: 0, categories: {}, changes: [] });
  });

  it('counts the frames that would change category per (active → candidate) pair, most first', () => {
    const sut = new ShadowTally();
    const c = (category: string) => ({ category, confidence: 0.9 });
    for (const [a, b] of [['milk', 'yogurt'], ['milk', 'yogurt'], ['milk', 'milk'], ['bread', 'milk'], ['milk', 'yogurt'], ['bread', 'bread']]) sut.add(c(a!), c(b!));
    const stats = sut.stats();
    expect(stats.changes).toEqual([
      { from: 'milk', to: 'yogurt', frames: 3 },
      { from: 'bread', to: 'milk', frames: 1 },
    ]);
    // Every frame that changed is in exactly one pair.
    expect(stats.changes!.reduce((n, p) => n + p.frames, 0)).toBe(Math.round(stats.frames * (1 - stats.agreement)));
  });
});
