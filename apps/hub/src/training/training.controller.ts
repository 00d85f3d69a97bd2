import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { TRAINING_JOB_STATUSES, TrainingJobRequestSchema, type TrainingJobRequest } from '@shelfsight/contracts';
import { z } from 'zod';
import { Actor } from '../auth/actor';
import { RequireRole } from '../auth/roles';
import { ZodBody, ZodQuery } from '../common/zod-openapi';
import { TrainingJobDto } from './training-job.dto';
import { TrainingService } from './training.service';

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  status: z.enum(TRAINING_JOB_STATUSES).optional(),
});

@ApiTags('training jobs')
@RequireRole('operator')
@Controller('training-jobs')
export class TrainingController {
  constructor(private readonly training: TrainingService) {}

  @ApiOperation({ summary: 'Start a training job' })
  @Post()
  @ApiCreatedResponse({ type: TrainingJobDto, description: 'queued; a worker process picks it up' })
  @ApiBadRequestResponse({ description: 'invalid request (the field is named)' })
  start(@ZodBody(TrainingJobRequestSchema) body: TrainingJobRequest, @Actor() actor: string): Promise<TrainingJobDto> {
    return this.training.start(body, actor);
  }

  @ApiOperation({ summary: 'List training jobs' })
  @Get()
  @ApiOkResponse({ type: [TrainingJobDto], description: 'newest first' })
  list(@ZodQuery(ListQuerySchema) q: z.infer<typeof ListQuerySchema>): Promise<TrainingJobDto[]> {
    return this.training.list(q.limit, q.status);
  }

  @ApiOperation({ summary: 'Get a training job' })
  @Get(':id')
  @ApiOkResponse({ type: TrainingJobDto, description: 'status, phase and progress (epoch, validation accuracy, rows)' })
  @ApiNotFoundResponse()
  get(@Param('id') id: string): Promise<TrainingJobDto> {
    return this.training.get(id);
  }

  @ApiOperation({ summary: 'Cancel a training job' })
  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOkResponse({ type: TrainingJobDto, description: 'a queued job is cancelled at once; a running one stops at its next step check and ends as cancelled' })
  @ApiConflictResponse({ description: 'the job already ended' })
  cancel(@Param('id') id: string, @Actor() actor: string): Promise<TrainingJobDto> {
    return this.training.cancel(id, actor);
  }

  @ApiOperation({ summary: 'Retry a failed or cancelled training job' })
  @Post(':id/retry')
  @ApiCreatedResponse({ type: TrainingJobDto, description: 'a new attempt of a failed or cancelled job' })
  @ApiConflictResponse({ description: 'the job is not failed or cancelled' })
  retry(@Param('id') id: string, @Actor() actor: string): Promise<TrainingJobDto> {
    return this.training.retry(id, actor);
  }
}
