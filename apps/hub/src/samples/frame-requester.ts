import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { SCHEMA_VERSION } from '@shelfsight/contracts';
import { DEVICE_LINK, type DeviceLink } from '../broker/device-link';
import { HubMetrics } from '../metrics/hub-metrics';

export type FrameRequestPurpose = 'correction' | 'disagreement';

/** Asks devices for frames (the request row is already committed; the reply finds it by requestId). */
@Injectable()
export class FrameRequester {
  private readonly log = new Logger(FrameRequester.name);

  constructor(
    @Inject(DEVICE_LINK) private readonly link: DeviceLink,
    private readonly metrics: HubMetrics,
  ) {}

  static newRequestId(): string {
    return randomUUID();
  }

  /** Send; a failure is logged (the request stays `requested`: the operator can correct again). */
  async send(purpose: FrameRequestPurpose, req: { requestId: string; deviceId: string; frameId: string }): Promise<boolean> {
    try {
      await this.link.sendFrameRequest({ v: SCHEMA_VERSION, ...req });
      this.metrics.frameRequests.inc({ purpose });
      return true;
    } catch (err) {
      this.log.warn(`frame request ${req.requestId} to ${req.deviceId} not sent: ${(err as Error).message}`);
      return false;
    }
  }
}
