import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { LocationCodeSchema } from '@shelfsight/contracts';
import { ZodParam, ZodQuery } from '../common/zod-openapi';
import { LocationDetailDto, LocationPageDto, LocationQuerySchema, LocationsQuerySchema, type LocationQuery, type LocationsQuery } from './location.dto';
import { LocationsService } from './locations.service';
import { RequireRole } from '../auth/roles';

@ApiTags('locations')
@RequireRole('viewer')
@Controller('locations')
export class LocationsController {
  constructor(private readonly locations: LocationsService) {}

  @ApiOperation({ summary: 'List shelf locations and their state' })
  @Get()
  @ApiOkResponse({ type: LocationPageDto, description: 'locations with their current state' })
  list(@ZodQuery(LocationsQuerySchema) query: LocationsQuery): Promise<LocationPageDto> {
    return this.locations.list(query);
  }

  @ApiOperation({ summary: 'Get one location\'s state' })
  @Get(':code')
  @ApiOkResponse({ type: LocationDetailDto })
  get(
    @ZodParam('code', LocationCodeSchema) code: string,
    @ZodQuery(LocationQuerySchema) query: LocationQuery,
  ): Promise<LocationDetailDto> {
    return this.locations.get(code, query);
  }
}
