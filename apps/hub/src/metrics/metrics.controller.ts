import { Controller, Get, Header } from '@nestjs/common';
import { RequireRole, ScrapeToken } from '../auth/roles';
import { METRICS_CONTENT_TYPE, renderMetrics } from '@shelfsight/common';
import { HubMetrics } from './hub-metrics';
import { ApiOperation } from '@nestjs/swagger';

/** Viewer keys may read metrics; so may a scraper with METRICS_TOKEN. */
@RequireRole('viewer')
@ScrapeToken()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: HubMetrics) {}

  /** Prometheus text format: the hub's metrics and the process's (prom-client defaults). */
  @ApiOperation({ summary: 'Prometheus metrics' })
  @Get()
  @Header('Content-Type', METRICS_CONTENT_TYPE)
  render(): Promise<string> {
    return renderMetrics(this.metrics.registry);
  }
}
