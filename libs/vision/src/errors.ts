/** Base class of every error the vision core raises on purpose; `code` is stable for callers. */
export abstract class VisionError extends Error {
  abstract readonly code: string;
}

/** An image could not be decoded (corrupt, truncated, not an image). Names the file or frame. */
export class ImageDecodeError extends VisionError {
  override name = 'ImageDecodeError';
  readonly code = 'IMAGE_DECODE';
  constructor(
    readonly source: string,
    cause: unknown,
  ) {
    super(`cannot decode image ${source}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** A backbone spec could not be resolved or its files are invalid. */
export class BackboneError extends VisionError {
  override name = 'BackboneError';
  readonly code = 'BACKBONE';
}

/** Downloaded bytes do not match the pinned SHA-256. */
export class ChecksumMismatchError extends VisionError {
  override name = 'ChecksumMismatchError';
  readonly code = 'CHECKSUM_MISMATCH';
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`checksum mismatch for ${what}: expected sha256 ${expected}, got ${actual}`);
  }
}

/** The network was needed but offline mode is on (or the network is unreachable). */
export class OfflineError extends VisionError {
  override name = 'OfflineError';
  readonly code = 'OFFLINE';
}

/** A model artifact folder is incomplete: missing file, short weights, bad JSON. */
export class TruncatedArtifactError extends VisionError {
  override name = 'TruncatedArtifactError';
  readonly code = 'ARTIFACT_TRUNCATED';
  constructor(
    readonly dir: string,
    detail: string,
  ) {
    super(`model artifact ${dir} is truncated or damaged: ${detail}`);
  }
}

/** A model artifact written by a format this code does not know. */
export class UnsupportedFormatVersionError extends VisionError {
  override name = 'UnsupportedFormatVersionError';
  readonly code = 'ARTIFACT_FORMAT';
  constructor(
    readonly dir: string,
    readonly found: unknown,
    readonly supported: number[],
  ) {
    super(`model artifact ${dir} has format version ${JSON.stringify(found)}; this build reads ${supported.join(', ')}`);
  }
}

/** A head trained on one backbone used with another. */
export class BackboneMismatchError extends VisionError {
  override name = 'BackboneMismatchError';
  readonly code = 'BACKBONE_MISMATCH';
  constructor(
    readonly expected: { id: string; checksum: string },
    readonly actual: { id: string; checksum: string },
  ) {
    super(
      `head was trained on backbone ${expected.id} (sha256 ${expected.checksum.slice(0, 12)}…) ` +
        `but backbone ${actual.id} (sha256 ${actual.checksum.slice(0, 12)}…) was given; retrain the head or pass the matching --backbone`,
    );
  }
}

/** A dataset is unusable (no classes, a class without images, bad CSV). */
export class DatasetError extends VisionError {
  override name = 'DatasetError';
  readonly code = 'DATASET';
}

/** Training options that cannot work together: an unknown preset, a preset missing a required option, a view count that cannot be met. */
export class TrainOptionsError extends VisionError {
  override name = 'TrainOptionsError';
  readonly code = 'TRAIN_OPTIONS';
}

/** Training stopped because its caller aborted it (a cancelled retraining job). */
export class TrainingCancelledError extends Error {
  override name = 'TrainingCancelledError';
  constructor() {
    super('training cancelled');
  }
}
