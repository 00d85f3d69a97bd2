import { createHash } from 'node:crypto';
import { LOCATION_CODE_PATTERN } from '@shelfsight/contracts';
import type { FrameOutcome } from './processed-journal';

/** One captured image with its metadata, on its way to the classifier. */
export interface Frame {
  /** Stable id: a frame classified again keeps it (hub dedups by device + frame id). */
  frameId: string;
  site: string;
  location: string;
  capturedAt: string;
  image: Buffer;
  /** Name of the source that produced it (metrics label). */
  source: string;
  /**
   * Called once, after the frame's detection is durable in the outbox (`ok`) or the
   * frame was refused (`rejected`); a source marks its own bookkeeping here.
   */
  settle?: (outcome: FrameOutcome) => Promise<void>;
  /** Called instead of `settle` when the frame was dropped from the queue or not handled before stop. */
  release?: () => void;
}

/** Why a frame was refused (metric label `reason`). */
export type RejectReason = 'no_location' | 'bad_sidecar' | 'decode' | 'invalid_result' | 'unreadable';

/** Where frames go: the agent's classification queue. */
export interface FrameSink {
  /** True when the queue takes a frame without dropping another (and the outbox has room). */
  hasRoom(): boolean;
  /** Queue a frame; when full, the queue's policy decides what is dropped. */
  offer(frame: Frame): void;
  /** True while the outbox is full (push sources may refuse instead of queueing). */
  outboxFull?(): boolean;
  /** Count and log a frame refused before classification. */
  reject(source: string, reason: RejectReason, detail: Record<string, unknown>): void;
}

/** A producer of frames (watched directory, HTTP upload, replay, synthetic). */
export interface FrameSource {
  readonly name: string;
  start(sink: FrameSink): Promise<void> | void;
  stop(): Promise<void>;
  /** True when the source has nothing more to offer right now (used to wait for "all done"). */
  idle(): boolean;
}

/** Frame id: hash of the image bytes and where they came from. */
export function frameIdOf(origin: string, image: Buffer): string {
  return createHash('sha256').update(origin).update('\0').update(image).digest('hex').slice(0, 32);
}

const LOCATION_PREFIX = new RegExp(`^(${LOCATION_CODE_PATTERN.source.replace(/^\^|\$$/g, '')})(?=$|[^A-Z0-9])`);

/** Location code at the start of a file name, e.g. `A-03-2-B_0001.jpg` → `A-03-2-B`. */
export function locationFromFileName(baseName: string): string | undefined {
  return LOCATION_PREFIX.exec(baseName)?.[1];
}
