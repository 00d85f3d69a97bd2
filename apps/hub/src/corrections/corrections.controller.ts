import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor } from '../auth/actor';
import { RequireRole } from '../auth/roles';
import { ZodBody, ZodParam } from '../common/zod-openapi';
import { CorrectionBodySchema, CorrectionDto, DetectionIdSchema, type CorrectionBody } from './correction.dto';
import { CorrectionsService } from './corrections.service';


@ApiTags('corrections')
@RequireRole('operator')
@Controller('detections/:id/correction')
export class CorrectionsController {
  constructor(private readonly corrections: CorrectionsService) {}

  @ApiOperation({ summary: 'Correct a detection\'s category' })
  @Post()
  @HttpCode(201)
  @ApiOkResponse({ type: CorrectionDto, description: 'records the correction, moves the state when the detection is current, asks the device for the frame' })
  correct(@ZodParam('id', DetectionIdSchema) id: bigint, @ZodBody(CorrectionBodySchema) body: CorrectionBody, @Actor() actor: string): Promise<CorrectionDto> {
    return this.corrections.correct(id, body.category, actor);
  }

  @ApiOperation({ summary: 'List a detection\'s corrections' })
  @Get()
  @ApiOkResponse({ type: [CorrectionDto], description: 'the detection\u2019s corrections, oldest first' })
  list(@ZodParam('id', DetectionIdSchema) id: bigint): Promise<CorrectionDto[]> {
    return this.corrections.forDetection(id);
  }
}
