import { Injectable, Logger } from '@nestjs/common';
import type { RejectReason } from '@shelfsight/contracts';
import { HubMetrics } from './hub-metrics';

/** Counts and logs every refused payload (rate-limited logging: a flood stays a counter). */
@Injectable()
export class RejectionRecorder {
  private readonly log = new Logger('Rejected');
  private lastLogAt = 0;
  private suppressed = 0;

  constructor(private readonly metrics: HubMetrics) {}

  record(channel: string, reason: RejectReason, deviceId: string, detail: string): void {
    this.metrics.rejected.inc({ channel, reason });
    const now = Date.now();
    if (now - this.lastLogAt < 1000) {
      this.suppressed += 1;
      return;
    }
    const extra = this.suppressed > 0 ? ` (+${this.suppressed} more suppressed)` : '';
    this.suppressed = 0;
    this.lastLogAt = now;
    this.log.warn(`${channel} from ${deviceId} rejected (${reason}): ${detail}${extra}`);
  }
}
