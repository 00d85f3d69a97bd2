import { Global, Module } from '@nestjs/common';
import { HubMetrics } from './hub-metrics';
import { MetricsController } from './metrics.controller';
import { RejectionRecorder } from './rejection-recorder';

@Global()
@Module({ providers: [HubMetrics, RejectionRecorder], exports: [HubMetrics, RejectionRecorder], controllers: [MetricsController] })
export class MetricsModule {}
