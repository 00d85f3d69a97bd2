import { Head, type HeadSpec } from '../head/head';
import { trainEnsemble } from '../head/ensemble';
import type { FeatureSet, TrainHeadOptions, TrainHeadResult } from '../head/train';
import { predictImages } from '../pipeline/infer';
import { argmax } from '../head/train';
import type { ActivationSet } from './activation-set';
import type { TailSpec } from './tail-math';
import { TailStepPool } from './step-pool';
import { WorkerPoolExtractor } from '../workers/worker-pool';
import { tuneTail, type TuneEpoch, type TuneTailOptions } from './tune';

export interface FitTunedOptions {
  /** Head training (the ensemble's and the first head's): the trainer's own options. */
  head: TrainHeadOptions;
  members: number;
  tune: Omit<TuneTailOptions, 'onEpoch' | 'signal'>;
  /** Output i counts towards label groups[i] (sub-labels); absent: outputs are labels. */
  groups?: number[];
  workers?: number;
  /** Skip tuning: the head-only recipe on the same activations (for comparisons). */
  headOnly?: boolean;
  onEpoch?: (rec: TuneEpoch) => void;
  onPhase?: (phase: 'pooled' | 'first-head' | 'tune' | 'heads', seconds: number) => void;
  signal?: AbortSignal;
}

export interface FitTunedResult {
  /** The tail's weights (the pretrained ones when `headOnly`). */
  tail: Float32Array;
  head: Head;
  tuneHistory: TuneEpoch[];
  bestEpoch: number;
  /** Validation accuracy on the reported labels (views averaged per image), before and after tuning; ensemble heads. */
  valAccuracy?: number;
  /** The first (single) head on the frozen features and the jointly tuned head, on the outputs. */
  firstHeadValAccuracy?: number;
  tunedHeadValAccuracy?: number;
  seconds: Record<string, number>;
}

/** Rows of a set as a FeatureSet of pooled features (group = image). */
function featureSet(set: ActivationSet, rows: Int32Array, pooled: Float32Array, dim: number): FeatureSet {
  return { dim, x: pooled, y: Int32Array.from(rows, (r) => set.y[r] as number), group: Int32Array.from(rows, (r) => set.group[r] as number) };
}

/** Accuracy on the reported labels: an image's views averaged, sub-label probabilities summed per label. */
export function labelAccuracy(head: Head, fs: FeatureSet, groups?: number[]): number {
  const byImage = new Map<number, number[]>();
  for (let i = 0; i < fs.y.length; i++) {
    const g = fs.group ? (fs.group[i] as number) : i;
    const list = byImage.get(g) ?? [];
    list.push(i);
    byImage.set(g, list);
  }
  const images = [...byImage.values()];
  const probs = predictImages(head, images.map((rows) => rows.map((r) => fs.x.subarray(r * fs.dim, (r + 1) * fs.dim))));
  let ok = 0;
  probs.forEach((p, k) => {
    const out = fs.y[(images[k] as number[])[0] as number] as number;
    if (argmax(p) === (groups ? (groups[out] as number) : out)) ok++;
  });
  return images.length ? ok / images.length : 0;
}

/**
 * The fine-tuning recipe on cached freeze-point activations:
 * 1. pooled features through the pretrained tail (= the backbone's own bottlenecks);
 * 2. a first head on them (linear probing), so tuning starts from a sensible head;
 * 3. tail + that head tuned together (`tuneTail`), best validation epoch kept;
 * 4. pooled features through the tuned tail, and the ensemble of heads trained on them
 *    (the head trainer's batched members on worker threads).
 * With `headOnly`, steps 3–4 use the pretrained tail: the head-only recipe.
 */
export async function fitTuned(
  set: ActivationSet,
  trainRows: Int32Array,
  valRows: Int32Array | undefined,
  spec: TailSpec,
  pretrained: Float32Array,
  opts: FitTunedOptions,
): Promise<FitTunedResult> {
  const seconds: Record<string, number> = {};
  let t0 = Date.now();
  const lap = (name: 'pooled' | 'first-head' | 'tune' | 'heads') => {
    seconds[name] = (seconds[name] ?? 0) + (Date.now() - t0) / 1000;
    opts.onPhase?.(name, seconds[name] as number);
    t0 = Date.now();
  };
  const c = spec.channels;
  const headSpec: HeadSpec = { ...opts.head.head, inputDim: c, numClasses: opts.head.numClasses };
  const pool = await TailStepPool.start(set, spec, headSpec, opts.workers ?? WorkerPoolExtractor.defaultSize());
  try {
    const val = valRows && valRows.length ? valRows : undefined;
    const pooledOf = async (tail: Float32Array) => ({
      train: featureSet(set, trainRows, await pool.pooled(tail, trainRows), c),
      val: val ? featureSet(set, val, await pool.pooled(tail, val), c) : undefined,
    });
    const frozen = await pooledOf(pretrained);
    lap('pooled');
    const heads = (fs: { train: FeatureSet; val?: FeatureSet }, members: number): Promise<TrainHeadResult[]> =>
      trainEnsemble(fs.train, fs.val, opts.head, members, { workers: opts.workers, signal: opts.signal });
    if (opts.headOnly) {
      const members = await heads(frozen, opts.members);
      const head = Head.ensemble(members.map((m) => m.head));
      if (opts.groups) head.groups = opts.groups;
      lap('heads');
      return { tail: pretrained.slice(), head, tuneHistory: [], bestEpoch: 0, valAccuracy: frozen.val ? labelAccuracy(head, frozen.val, opts.groups) : undefined, seconds };
    }
    const [first] = await heads(frozen, 1);
    if (!first) throw new Error('no first head');
    const firstWeights = first.head.toWeights();
    const firstHeadValAccuracy = first.bestValAccuracy;
    first.head.dispose();
    lap('first-head');
    const tuned = await tuneTail(pool, set, trainRows, val, pretrained, headSpec, firstWeights, { ...opts.tune, onEpoch: opts.onEpoch, signal: opts.signal });
    lap('tune');
    const after = await pooledOf(tuned.tail);
    lap('pooled');
    const members = await heads(after, opts.members);
    const head = Head.ensemble(members.map((m) => m.head));
    if (opts.groups) head.groups = opts.groups;
    lap('heads');
    return {
      tail: tuned.tail,
      head,
      tuneHistory: tuned.history,
      bestEpoch: tuned.bestEpoch,
      valAccuracy: after.val ? labelAccuracy(head, after.val, opts.groups) : undefined,
      firstHeadValAccuracy,
      tunedHeadValAccuracy: tuned.bestValAccuracy,
      seconds,
    };
  } finally {
    await pool.close();
  }
}
