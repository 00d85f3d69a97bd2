import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ZodPipe } from '../common/zod-query.pipe';
import { InventoryDto, InventoryQuerySchema, type InventoryQuery } from './inventory.dto';
import { InventoryService } from './inventory.service';

@ApiTags('inventory')
@Controller('inventory')
export class InventoryController {
  constructor(private readonly inventory: InventoryService) {}

  @Get()
  @ApiQuery({ name: 'site', required: false })
  @ApiOkResponse({ type: InventoryDto, description: 'count of locations per category, with the time of the newest observation' })
  counts(@Query(new ZodPipe(InventoryQuerySchema)) query: InventoryQuery): Promise<InventoryDto> {
    return this.inventory.counts(query);
  }
}
