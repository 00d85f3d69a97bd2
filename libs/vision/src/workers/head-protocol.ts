import type { EvalRecord, FeatureSet, TrainHeadOptions, TrainHeadResult } from '../head/train';

export interface HeadWorkerData {
  register?: string;
  entry: string;
  train: FeatureSet;
  val?: FeatureSet;
  /** `seed` is the first member's seed of this worker's run. */
  opts: TrainHeadOptions;
  members: number;
}

export type WireHeadResult = Omit<TrainHeadResult, 'head'> & { weights: Float32Array };

export type HeadWorkerReply =
  | { type: 'eval'; rec: EvalRecord; member: number; total: number }
  | { type: 'done'; results: WireHeadResult[] }
  | { type: 'failed'; error: string };
