import type { ScoredCategory } from '@shelfsight/contracts';

/** The result of classifying one frame on a device. */
export interface FrameClassification {
  category: string;
  confidence: number;
  /** Best categories first; the first entry equals `category`. */
  topK: ScoredCategory[];
  /** Wall time spent decoding and classifying this frame. */
  latencyMs: number;
  /**
   * The backbone's bottleneck of the frame's first view (the centre crop; the zoomed one
   * when the model's TTA has no centre crop), computed anyway for classifying: samples
   * carry it, and another head on the same backbone (a shadow model) can score it
   * (`TfjsFrameClassifier.classifyFeatures`) without a second backbone pass.
   */
  embedding?: Float32Array;
}

/**
 * What the edge agent needs from the vision core: classify encoded image bytes.
 * Implemented by the TensorFlow.js classifier and by the stand-in used in simulation.
 */
export interface FrameClassifier {
  readonly backboneId: string;
  readonly modelVersion: string;
  classify(image: Buffer): Promise<FrameClassification>;
  dispose(): Promise<void> | void;
}
