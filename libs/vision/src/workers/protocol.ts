import type { BackboneInfo } from '../backbones/backbone';
import type { DistortionDraw } from '../image/distort';

export interface WorkerData {
  backbone: string;
  offline: boolean;
  batchSize: number;
  /** Run only the frozen part, up to this freeze point (name or node): results are its activations. */
  freezePoint?: string;
  /** The TypeScript require hook (bin/register.js) when running from sources. */
  register?: string;
  entry: string;
}

export interface WireJob {
  input: string | Uint8Array;
  source: string;
  draw?: DistortionDraw;
}

export type WorkerRequest = { type: 'extract'; id: number; jobs: WireJob[] } | { type: 'close' };

export type WireResult = Float32Array | { error: string; source: string };

export type WorkerReply =
  | { type: 'ready'; backbone: BackboneInfo }
  | { type: 'result'; id: number; results: WireResult[] }
  | { type: 'failed'; id: number; error: string }
  | { type: 'fatal'; error: string };
