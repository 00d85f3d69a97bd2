import { Controller, Get, Header, Query } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import { timeSeriesChartSvg } from '@shelfsight/common';
import { ZodPipe } from '../common/zod-query.pipe';
import {
  HISTORY_BUCKETS,
  HistoryDto,
  HistoryQuerySchema,
  InventoryDto,
  InventoryQuerySchema,
  type HistoryQuery,
  type InventoryQuery,
} from './inventory.dto';
import { InventoryService } from './inventory.service';
import { RequireRole } from '../auth/roles';

const SCOPE_QUERIES = [
  ApiQuery({ name: 'site', required: false }),
  ApiQuery({ name: 'zone', required: false, description: 'aisle part of the location code, e.g. A' }),
  ApiQuery({ name: 'category', required: false }),
];
const COUNT_QUERIES = [
  ...SCOPE_QUERIES,
  ApiQuery({ name: 'minConfidence', required: false, type: Number, description: 'count only states at least this confident' }),
  ApiQuery({ name: 'includeStale', required: false, type: Boolean, description: 'also count locations not observed for STALE_AFTER_S' }),
];
const HISTORY_QUERIES = [
  ...SCOPE_QUERIES,
  ApiQuery({ name: 'from', required: false, description: 'ISO time; default 24 h (hour) or 30 days (day) before `to`' }),
  ApiQuery({ name: 'to', required: false, description: 'ISO time; default now' }),
  ApiQuery({ name: 'bucket', required: false, enum: HISTORY_BUCKETS }),
];
const apply = (decorators: MethodDecorator[]): MethodDecorator => (target, key, desc) => {
  for (const d of decorators) d(target, key, desc);
};

@ApiTags('inventory')
@RequireRole('viewer')
@Controller()
export class InventoryController {
  constructor(private readonly inventory: InventoryService) {}

  @Get('inventory')
  @apply(COUNT_QUERIES)
  @ApiOkResponse({ type: InventoryDto, description: 'locations per category, with how fresh each count is' })
  counts(@Query(new ZodPipe(InventoryQuerySchema)) query: InventoryQuery): Promise<InventoryDto> {
    return this.inventory.counts(query);
  }

  @Get('inventory.csv')
  @apply(COUNT_QUERIES)
  @ApiProduces('text/csv')
  @Header('Content-Type', 'text/csv; charset=utf-8')
  csv(@Query(new ZodPipe(InventoryQuerySchema)) query: InventoryQuery): Promise<string> {
    return this.inventory.csv(query);
  }

  @Get('inventory/history')
  @apply(HISTORY_QUERIES)
  @ApiOkResponse({ type: HistoryDto, description: 'locations per category at the end of each hour or day' })
  history(@Query(new ZodPipe(HistoryQuerySchema)) query: HistoryQuery): Promise<HistoryDto> {
    return this.inventory.history(query);
  }

  @Get('inventory/history.svg')
  @apply(HISTORY_QUERIES)
  @ApiProduces('image/svg+xml')
  @Header('Content-Type', 'image/svg+xml')
  async historyChart(@Query(new ZodPipe(HistoryQuerySchema)) query: HistoryQuery): Promise<string> {
    const h = await this.inventory.history(query);
    const times = h.points.map((p) => p.time);
    const series = h.categories.map((c) => ({ name: c, values: h.points.map((p) => p.counts[c] ?? 0) }));
    const scope = [query.site, query.zone && `zone ${query.zone}`, query.category].filter(Boolean).join(', ');
    return timeSeriesChartSvg(`Locations per category${scope ? ` (${scope})` : ''}, per ${h.bucket}`, times, series);
  }
}
