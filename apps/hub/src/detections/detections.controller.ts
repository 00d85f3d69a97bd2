import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ZodQuery } from '../common/zod-openapi';
import { DetectionPageDto, DetectionsQuerySchema, type DetectionsQuery } from './detection.dto';
import { DetectionsService } from './detections.service';
import { RequireRole } from '../auth/roles';

@ApiTags('detections')
@RequireRole('viewer')
@Controller('detections')
export class DetectionsController {
  constructor(private readonly detections: DetectionsService) {}

  @ApiOperation({ summary: 'List detections' })
  @Get()
  @ApiOkResponse({ type: DetectionPageDto })
  list(@ZodQuery(DetectionsQuerySchema) query: DetectionsQuery): Promise<DetectionPageDto> {
    return this.detections.list(query);
  }
}
