import { Controller, Get, Header } from '@nestjs/common';
import { HubMetrics } from './hub-metrics';

@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: HubMetrics) {}

  /** Prometheus text format. */
  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4')
  render(): string {
    return this.metrics.registry.render();
  }
}
