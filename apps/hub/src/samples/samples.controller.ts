import { Controller, Get, Headers, HttpCode, Logger, Post, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Actor } from '../auth/actor';
import { RequireRole } from '../auth/roles';
import { requestedRange, sendRangeHeaders } from '../common/byte-range';
import { ZodBody, ZodParam, ZodQuery } from '../common/zod-openapi';
import {
  BulkLabelBodySchema,
  LabelBodySchema,
  LabelResultDto,
  SampleCountsDto,
  SampleDto,
  SampleIdSchema,
  SamplePageDto,
  SamplesQuerySchema,
  SimilarPageDto,
  SimilarQuerySchema,
  type BulkLabelBody,
  type LabelBody,
  type SamplesQuery,
  type SimilarQuery,
} from './sample.dto';
import { SamplesService } from './samples.service';


@ApiTags('samples')
@RequireRole('operator')
@Controller('samples')
export class SamplesController {
  constructor(private readonly samples: SamplesService) {}

  @ApiOperation({ summary: 'List samples' })
  @Get()
  @ApiOkResponse({ type: SamplePageDto })
  list(@ZodQuery(SamplesQuerySchema) query: SamplesQuery): Promise<SamplePageDto> {
    return this.samples.list(query);
  }

  @ApiOperation({ summary: 'Count samples per state and per category' })
  @Get('counts')
  @ApiOkResponse({ type: SampleCountsDto })
  counts(): Promise<SampleCountsDto> {
    return this.samples.counts();
  }

  @ApiOperation({ summary: 'Label many samples at once' })
  @Post('labels')
  @HttpCode(200)
  @ApiOkResponse({ type: LabelResultDto, description: 'label many samples at once (e.g. a cluster from /similar)' })
  bulkLabel(@ZodBody(BulkLabelBodySchema) body: BulkLabelBody, @Actor() actor: string): Promise<LabelResultDto> {
    return this.samples.bulkLabel(body, actor);
  }

  @ApiOperation({ summary: 'Get a sample' })
  @Get(':id')
  @ApiOkResponse({ type: SampleDto })
  get(@ZodParam('id', SampleIdSchema) id: bigint): Promise<SampleDto> {
    return this.samples.get(id);
  }

  @ApiOperation({ summary: 'Get a sample\'s thumbnail (JPEG)' })
  @Get(':id/thumbnail')
  @ApiProduces('image/jpeg')
  async thumbnail(@ZodParam('id', SampleIdSchema) id: bigint, @Headers('if-none-match') ifNoneMatch: string | undefined, @Req() req: Request, @Res() res: Response): Promise<void> {
    const facts = await this.samples.thumbnailFacts(id);
    const etag = `"${facts.sha256}"`;
    res.setHeader('ETag', etag);
    // Content-addressed: the bytes behind this URL never change.
    res.setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    res.setHeader('Accept-Ranges', 'bytes');
    if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}`)) {
      res.status(304).end();
      return;
    }
    const range = requestedRange(req, res, facts.bytes);
    if (range === 'unsatisfiable') return;
    const blob = await this.samples.thumbnail(id, range);
    res.setHeader('Content-Type', 'image/jpeg');
    sendRangeHeaders(res, blob.bytes, range);
    // A store that fails mid-way (or bytes that do not hash to their key) cuts the response short.
    blob.stream.on('error', (err) => {
      new Logger('Samples').warn(`thumbnail of sample ${id} (${facts.sha256}) cut short: ${err.message}`);
      res.destroy();
    });
    res.on('close', () => blob.stream.destroy());
    blob.stream.pipe(res);
  }

  @ApiOperation({ summary: 'Find samples similar to one' })
  @Get(':id/similar')
  @ApiOkResponse({ type: SimilarPageDto, description: 'nearest samples of the same backbone by cosine on the embeddings, most similar first' })
  similar(@ZodParam('id', SampleIdSchema) id: bigint, @ZodQuery(SimilarQuerySchema) q: SimilarQuery): Promise<SimilarPageDto> {
    return this.samples.similarTo(id, q.limit);
  }

  @ApiOperation({ summary: 'Label a sample' })
  @Post(':id/label')
  @HttpCode(200)
  @ApiOkResponse({ type: SampleDto, description: 'label (or relabel) a sample; the category must be active' })
  label(@ZodParam('id', SampleIdSchema) id: bigint, @ZodBody(LabelBodySchema) body: LabelBody, @Actor() actor: string): Promise<SampleDto> {
    return this.samples.label(id, body.category, actor);
  }

  @ApiOperation({ summary: 'Skip a sample' })
  @Post(':id/skip')
  @HttpCode(200)
  @ApiOkResponse({ type: SampleDto, description: 'take a sample out of the queue unlabelled (it still expires)' })
  skip(@ZodParam('id', SampleIdSchema) id: bigint): Promise<SampleDto> {
    return this.samples.skip(id);
  }

  @ApiOperation({ summary: 'Put a sample back in the queue' })
  @Post(':id/requeue')
  @HttpCode(200)
  @ApiOkResponse({ type: SampleDto, description: 'undo a label or a skip: the sample is pending again, unlabelled' })
  requeue(@ZodParam('id', SampleIdSchema) id: bigint): Promise<SampleDto> {
    return this.samples.requeue(id);
  }
}
