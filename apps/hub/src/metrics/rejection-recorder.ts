import { Injectable, Logger } from '@nestjs/common';
import type { RejectReason } from '@shelfsight/contracts';
import { RateLimitedLog } from '../common/rate-limited-log';
import { HubMetrics } from './hub-metrics';

/** Counts and logs every refused payload (rate-limited logging: a flood stays a counter). */
@Injectable()
export class RejectionRecorder {
  private readonly logger = new Logger('Rejected');
  private readonly log = new RateLimitedLog((line) => this.logger.warn(line));

  constructor(private readonly metrics: HubMetrics) {}

  record(channel: string, reason: RejectReason, deviceId: string, detail: string): void {
    this.metrics.rejected.inc({ channel, reason });
    this.log.warn(`${channel} from ${deviceId} rejected (${reason}): ${detail}`);
  }
}
