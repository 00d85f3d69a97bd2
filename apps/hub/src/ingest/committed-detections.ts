import { Injectable } from '@nestjs/common';

/** A location whose detections were just committed. */
export interface CommittedLocation {
  site: string;
  location: string;
}

export type CommitListener = (locations: CommittedLocation[]) => void;

/**
 * After-commit notifications of the detection writer, for work off the ingest hot path
 * (the disagreement check). Listeners must return at once; they run after the commit
 * and its callers' acks are under way, and an exception in one is contained.
 */
@Injectable()
export class CommittedDetections {
  private readonly listeners: CommitListener[] = [];

  subscribe(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  emit(locations: CommittedLocation[]): void {
    for (const l of this.listeners) {
      try {
        l(locations);
      } catch {
        // a listener's failure is its own; ingest goes on
      }
    }
  }
}
