import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { timeSeriesChartSvg } from '@shelfsight/common';
import { ZodQuery } from '../common/zod-openapi';
import {
  HistoryDto,
  HistoryQuerySchema,
  InventoryDto,
  InventoryQuerySchema,
  type HistoryQuery,
  type InventoryQuery,
} from './inventory.dto';
import { InventoryService } from './inventory.service';
import { RequireRole } from '../auth/roles';

@ApiTags('inventory')
@RequireRole('viewer')
@Controller()
export class InventoryController {
  constructor(private readonly inventory: InventoryService) {}

  @ApiOperation({ summary: 'Count products on the shelves' })
  @Get('inventory')
  @ApiOkResponse({ type: InventoryDto, description: 'locations per category, with how fresh each count is' })
  counts(@ZodQuery(InventoryQuerySchema) query: InventoryQuery): Promise<InventoryDto> {
    return this.inventory.counts(query);
  }

  @ApiOperation({ summary: 'Export the inventory counts (CSV)' })
  @Get('inventory.csv')
  @ApiProduces('text/csv')
  @Header('Content-Type', 'text/csv; charset=utf-8')
  csv(@ZodQuery(InventoryQuerySchema) query: InventoryQuery): Promise<string> {
    return this.inventory.csv(query);
  }

  @ApiOperation({ summary: 'Inventory counts over time' })
  @Get('inventory/history')
  @ApiOkResponse({ type: HistoryDto, description: 'locations per category at the end of each hour or day' })
  history(@ZodQuery(HistoryQuerySchema) query: HistoryQuery): Promise<HistoryDto> {
    return this.inventory.history(query);
  }

  @ApiOperation({ summary: 'Draw inventory counts over time (SVG)' })
  @Get('inventory/history.svg')
  @ApiProduces('image/svg+xml')
  @Header('Content-Type', 'image/svg+xml')
  async historyChart(@ZodQuery(HistoryQuerySchema) query: HistoryQuery): Promise<string> {
    const h = await this.inventory.history(query);
    const times = h.points.map((p) => p.time);
    const series = h.categories.map((c) => ({ name: c, values: h.points.map((p) => p.counts[c] ?? 0) }));
    const scope = [query.site, query.zone && `zone ${query.zone}`, query.category].filter(Boolean).join(', ');
    return timeSeriesChartSvg(`Locations per category${scope ? ` (${scope})` : ''}, per ${h.bucket}`, times, series);
  }
}
