import type { Backbone, BackboneInfo } from './backbones/backbone';
import type { ImageDecodeError } from './errors';
import { extractFeatures, type FeatureJob } from './features';

/** Something that turns image jobs into bottlenecks: this thread, or a pool of workers. */
export interface FeatureExtractor {
  readonly backbone: BackboneInfo;
  extract(jobs: FeatureJob[], onProgress?: (done: number) => void): Promise<Array<Float32Array | ImageDecodeError>>;
  close(): Promise<void>;
}

/** Runs the backbone in the calling thread (one core). */
export class InThreadExtractor implements FeatureExtractor {
  constructor(
    readonly backbone: Backbone,
    private readonly batchSize = 8,
    private readonly owns = false,
  ) {}

  extract(jobs: FeatureJob[], onProgress?: (done: number) => void): Promise<Array<Float32Array | ImageDecodeError>> {
    return extractFeatures(this.backbone, jobs, { batchSize: this.batchSize, onBatch: onProgress });
  }

  async close(): Promise<void> {
    if (this.owns) this.backbone.dispose();
  }
}
