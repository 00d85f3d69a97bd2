import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import { LocationCodeSchema } from '@shelfsight/contracts';
import { ZodPipe } from '../common/zod-query.pipe';
import { LocationDetailDto, LocationPageDto, LocationQuerySchema, LocationsQuerySchema, type LocationQuery, type LocationsQuery } from './location.dto';
import { LocationsService } from './locations.service';
import { RequireRole } from '../auth/roles';

@ApiTags('locations')
@RequireRole('viewer')
@Controller('locations')
export class LocationsController {
  constructor(private readonly locations: LocationsService) {}

  @Get()
  @ApiQuery({ name: 'site', required: false })
  @ApiQuery({ name: 'zone', required: false })
  @ApiQuery({ name: 'category', required: false })
  @ApiQuery({ name: 'stale', required: false, type: Boolean })
  @ApiQuery({ name: 'limit', required: false, type: Number })
  @ApiQuery({ name: 'cursor', required: false })
  @ApiOkResponse({ type: LocationPageDto, description: 'locations with their current state' })
  list(@Query(new ZodPipe(LocationsQuerySchema)) query: LocationsQuery): Promise<LocationPageDto> {
    return this.locations.list(query);
  }

  @Get(':code')
  @ApiQuery({ name: 'site', required: false, description: 'needed when the code exists in several sites' })
  @ApiQuery({ name: 'history', required: false, type: Number, description: 'recent detections to include (default 20)' })
  @ApiOkResponse({ type: LocationDetailDto })
  get(
    @Param('code', new ZodPipe(LocationCodeSchema, 'code')) code: string,
    @Query(new ZodPipe(LocationQuerySchema)) query: LocationQuery,
  ): Promise<LocationDetailDto> {
    return this.locations.get(code, query);
  }
}
