import { Controller, Get, Header, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { setAuditReason } from '../audit/audit-record';
import { ApiBody, ApiConsumes, ApiCreatedResponse, ApiExtraModels, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Actor } from '../auth/actor';
import { RequireRole } from '../auth/roles';
import { ZodBody, ZodQuery } from '../common/zod-openapi';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import {
  CompareModelsQuerySchema,
  EvaluationRowsQuerySchema,
  GateOverrideSchema,
  ListModelsQuerySchema,
  RegisterModelQuerySchema,
  type CompareModelsQuery,
  type EvaluationRowsDto,
  type EvaluationRowsQuery,
  type GateOverrideBody,
  type ListModelsQuery,
  type ModelComparisonDto,
  type ModelVersionDto,
  type ModelVersionSummaryDto,
  type RegisterModelQuery,
} from './models.dto';
import { CategoryAccuracyDoc, EvaluationRowsDoc, ModelComparisonDoc, ModelVersionDoc, ModelVersionSummaryDoc } from './models.openapi';
import { ModelsService } from './models.service';
import { ARTIFACT_MEDIA_TYPES, readArtifactBody } from './upload-body';
import { HubMetrics } from '../metrics/hub-metrics';

@ApiTags('models')
@ApiExtraModels(CategoryAccuracyDoc)
@RequireRole('operator')
@Controller('models')
export class ModelsController {
  constructor(
    private readonly models: ModelsService,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly metrics: HubMetrics,
  ) {}

  /**
   * Register a head trained elsewhere (`shelf train`; `shelf models register <dir>`). Body:
   * a tar (or tar.gz) of the artifact folder — manifest.json, head.bin, labels.txt,
   * outputs.txt when present, training-rows.bin when available. 201 with the version
   * (metrics and gate verdict); 200 when the same artifact was registered before; 422
   * when the artifact is damaged; 409 when the version id exists with other weights.
   */
  @ApiOperation({ summary: 'Register a model version' })
  @Post()
  @ApiConsumes(...ARTIFACT_MEDIA_TYPES)
  @ApiBody({ description: 'tar of the artifact folder', schema: { type: 'string', format: 'binary' } })
  @ApiCreatedResponse({ type: ModelVersionDoc, description: 'registered (200 with the same body when it already was)' })
  async register(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @ZodQuery(RegisterModelQuerySchema) query: RegisterModelQuery,
    @Actor() actor: string,
  ): Promise<ModelVersionDto> {
    const body = await readArtifactBody(req, this.config, (reason) => this.metrics.modelsRefused.inc({ reason }));
    const result = await this.models.registerArchive(body, { parent: query.parent, registeredBy: actor });
    res.status(result.created ? 201 : 200);
    return result.model;
  }

  /**
   * Add labelled evaluation rows (a training-rows.bin, `shelf train --training-rows`) for a
   * backbone: every row joins the hub's frozen evaluation rows, on which the gate scores
   * every later version of the backbone. Admins only (the rows decide what is releasable).
   */
  @ApiOperation({ summary: 'Add labelled evaluation rows for a backbone' })
  @Post('evaluation-rows')
  @RequireRole('admin')
  @ApiConsumes('application/octet-stream')
  @ApiBody({ description: 'training-rows.bin', schema: { type: 'string', format: 'binary' } })
  @ApiCreatedResponse({ type: EvaluationRowsDoc })
  async addEvaluationRows(@Req() req: Request, @ZodQuery(EvaluationRowsQuerySchema) query: EvaluationRowsQuery, @Actor() actor: string): Promise<EvaluationRowsDto> {
    const body = await readArtifactBody(req, this.config, (reason) => this.metrics.modelsRefused.inc({ reason }));
    return this.models.addEvaluationRows(body, query.backbone, actor);
  }

  /**
   * Release a version the gate left unverified (categories with fewer than GATE_MIN_EVAL_ROWS
   * evaluation rows) with a written reason; audited. 409 when the version is releasable
   * already or was refused for a regression (which no override releases).
   */
  @ApiOperation({ summary: 'Override a model version\'s release gate' })
  @Post(':version/override')
  @HttpCode(200)
  @ApiOkResponse({ type: ModelVersionDoc })
  override(@Param('version') version: string, @ZodBody(GateOverrideSchema) body: GateOverrideBody, @Actor() actor: string, @Req() req: Request): Promise<ModelVersionDto> {
    setAuditReason(req, `gate override: ${body.reason}`);
    return this.models.override(version, body.reason, actor);
  }

  @ApiOperation({ summary: 'List model versions' })
  @Get()
  @ApiOkResponse({ type: [ModelVersionSummaryDoc], description: 'model versions, newest first, with their gate verdicts' })
  list(@ZodQuery(ListModelsQuerySchema) query: ListModelsQuery): Promise<ModelVersionSummaryDto[]> {
    return this.models.list(query);
  }

  @ApiOperation({ summary: 'Compare two model versions' })
  @Get('compare')
  @ApiOkResponse({ type: ModelComparisonDoc, description: "overall and per-category accuracy of b minus a on the hub's evaluation rows of their shared categories, row by row; 409 for different backbones or no shared category" })
  compare(@ZodQuery(CompareModelsQuerySchema) query: CompareModelsQuery): Promise<ModelComparisonDto> {
    return this.models.compare(query.a, query.b);
  }

  @ApiOperation({ summary: 'Get a model version' })
  @Get(':version')
  @ApiOkResponse({ type: ModelVersionDoc, description: 'lineage, metrics with confusion matrix, gate verdict, backlog re-score state' })
  get(@Param('version') version: string): Promise<ModelVersionDto> {
    return this.models.get(version);
  }

  @ApiOperation({ summary: 'Draw a model version\'s confusion matrix (SVG)' })
  @Get(':version/confusion.svg')
  @ApiProduces('image/svg+xml')
  @Header('Content-Type', 'image/svg+xml')
  confusion(@Param('version') version: string): Promise<string> {
    return this.models.confusionSvg(version);
  }

  /** The artifact as a tar (manifest.json, head.bin, labels.txt, outputs.txt); ETag and X-Artifact-Sha256 = its SHA-256. */
  @ApiOperation({ summary: 'Download a model version\'s artifact' })
  @Get(':version/artifact')
  @ApiProduces('application/x-tar')
  @HttpCode(200)
  async artifact(@Param('version') version: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const a = await this.models.artifact(version);
    const etag = `"${a.sha256}"`;
    res.setHeader('ETag', etag);
    res.setHeader('X-Artifact-Sha256', a.sha256);
    res.setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    if (req.headers['if-none-match'] === etag) {
      (a.stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Type', 'application/x-tar');
    res.setHeader('Content-Length', String(a.bytes));
    res.setHeader('Content-Disposition', `attachment; filename="${version.replace(/[^A-Za-z0-9._-]/g, '_')}.tar"`);
    // A blob store that fails mid-way (or bytes that do not hash to their key) cuts the response short.
    a.stream.on('error', () => res.destroy());
    a.stream.pipe(res);
  }
}
