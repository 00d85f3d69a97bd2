import { Controller, Get, Header } from '@nestjs/common';
import { RequireRole, ScrapeToken } from '../auth/roles';
import { HubMetrics } from './hub-metrics';

/** Viewer keys may read metrics; so may a scraper with METRICS_TOKEN. */
@RequireRole('viewer')
@ScrapeToken()
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
