import type { HeadSpec } from '../head/head';
import type { ActivationSet } from '../tail/activation-set';
import type { TailSpec } from '../tail/tail-math';
import type { StepInput, StepOutput } from '../tail/tail-steps';

export interface TailWorkerData {
  register?: string;
  entry: string;
  /** The activations (codes in a SharedArrayBuffer: not copied). */
  set: ActivationSet;
  spec: TailSpec;
  headSpec: HeadSpec;
}

export type TailWorkerRequest =
  | { type: 'step'; id: number; input: StepInput }
  | { type: 'pooled'; id: number; tail: Float32Array; rows: Int32Array };

export type TailWorkerReply =
  | { type: 'ready' }
  | { type: 'step'; id: number; out: StepOutput }
  | { type: 'pooled'; id: number; pooled: Float32Array }
  | { type: 'failed'; id?: number; error: string };
