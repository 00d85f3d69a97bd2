import { Controller, Get, Header, Headers, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiConflictResponse, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProduces, ApiTags, ApiUnprocessableEntityResponse } from '@nestjs/swagger';
import type { Response } from 'express';
import { setAuditReason } from '../audit/audit-record';
import { Actor } from '../auth/actor';
import type { RequestWithPrincipal } from '../auth/actor';
import { DeviceCredential, RequireRole } from '../auth/roles';
import { requestedRange, sendRangeHeaders } from '../common/byte-range';
import { ZodBody, ZodQuery } from '../common/zod-openapi';
import { CreateRolloutSchema, ListRolloutsQuerySchema, type CreateRollout, type ListRolloutsQuery, type RolloutView } from './rollout.dto';
import { RolloutDto } from './rollout-view.dto';
import { RolloutArtifactsService } from './rollout-artifacts.service';
import { RolloutsService } from './rollouts.service';
import { SigningKeys } from './signing-keys';

@ApiTags('rollouts')
@RequireRole('operator')
@Controller('rollouts')
export class RolloutsController {
  constructor(
    private readonly rollouts: RolloutsService,
    private readonly keys: SigningKeys,
    private readonly artifacts: RolloutArtifactsService,
  ) {}

  /**
   * Roll a releasable version out to a target in stages; 409 (naming the rollout in the way)
   * when a device is in another unfinished rollout. Every rollout has a shadow gate and a
   * health watch unless `policy` turns one off with an `overrideReason`: the audit entry of
   * the request then carries the rollout id and the reason.
   */
  @ApiOperation({ summary: 'Start a rollout' })
  @Post()
  @ApiCreatedResponse({ type: RolloutDto })
  @ApiConflictResponse({ description: 'a device of the target is in another unfinished rollout: rolloutId names it' })
  @ApiUnprocessableEntityResponse({ description: 'the version may not be rolled out (not releasable, unknown, foreign backbone, empty target)' })
  async create(@ZodBody(CreateRolloutSchema) body: CreateRollout, @Actor() actor: string, @Req() req: RequestWithPrincipal): Promise<RolloutView> {
    const view = await this.rollouts.create(body, actor);
    const off = [view.policy.shadowGate === false && 'shadow gate off', view.policy.health === false && 'health watch off'].filter(Boolean);
    if (off.length > 0) setAuditReason(req, `rollout ${view.id} of ${view.modelVersion}: ${off.join(', ')}: ${view.policy.overrideReason ?? ''}`);
    return view;
  }

  @ApiOperation({ summary: 'List rollouts' })
  @Get()
  @ApiOkResponse({ type: [RolloutDto], description: 'rollouts, newest first, with per-stage counts' })
  list(@ZodQuery(ListRolloutsQuerySchema) query: ListRolloutsQuery): Promise<RolloutView[]> {
    return this.rollouts.list(query);
  }

  /** The file devices are provisioned with (`shelf agent --trusted-keys`): the root public key, `<keyid> <base64 SPKI DER>`. */
  @ApiOperation({ summary: 'The trusted-keys file devices are provisioned with' })
  @Get('trusted-keys')
  @RequireRole('viewer')
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'the root public key as `<keyid> <base64 SPKI DER>`' })
  @Header('Content-Type', 'text/plain; charset=utf-8')
  trustedKeys(): string {
    return this.keys.trustedKeysFile();
  }

  /**
   * A version's artifact bytes for devices: HTTP basic auth with the device's credential
   * (or an operator API key); exact Content-Length; `Range` for resuming (206 / 416).
   */
  @ApiOperation({ summary: 'Download a rolled-out model artifact (devices)' })
  @Get('artifacts/:version')
  @DeviceCredential()
  @ApiProduces('application/octet-stream')
  async artifact(
    @Param('version') version: string,
    @Headers('authorization') authorization: string | undefined,
    @Req() req: RequestWithPrincipal,
    @Res() res: Response,
  ): Promise<void> {
    // An operator's key was checked by the access guard; else the device credential is checked here.
    const a = await this.artifacts.authorize(version, req.principal ? { principal: req.principal.id } : { authorization });
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', `"${a.sha256}"`);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Cache-Control', 'private, no-transform');
    const range = requestedRange(req, res, a.bytes);
    if (range === 'unsatisfiable') return;
    const stream = await this.artifacts.open(a.sha256, a.bytes, range);
    sendRangeHeaders(res, a.bytes, range);
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  }

  @ApiOperation({ summary: 'Get a rollout' })
  @Get(':id')
  @ApiOkResponse({ type: RolloutDto })
  get(@Param('id') id: string): Promise<RolloutView> {
    return this.rollouts.get(id);
  }

  @ApiOperation({ summary: 'Pause a rollout' })
  @Post(':id/pause')
  @HttpCode(200)
  @ApiOkResponse({ type: RolloutDto })
  pause(@Param('id') id: string): Promise<RolloutView> {
    return this.rollouts.pause(id);
  }

  @ApiOperation({ summary: 'Resume a paused rollout' })
  @Post(':id/resume')
  @HttpCode(200)
  @ApiOkResponse({ type: RolloutDto })
  resume(@Param('id') id: string): Promise<RolloutView> {
    return this.rollouts.resume(id);
  }

  @ApiOperation({ summary: 'Abort a rollout' })
  @Post(':id/abort')
  @HttpCode(200)
  @ApiOkResponse({ type: RolloutDto })
  abort(@Param('id') id: string): Promise<RolloutView> {
    return this.rollouts.abort(id);
  }

  @ApiOperation({ summary: 'Roll a rollout back' })
  @Post(':id/rollback')
  @HttpCode(200)
  @ApiOkResponse({ type: RolloutDto })
  rollback(@Param('id') id: string): Promise<RolloutView> {
    return this.rollouts.rollback(id);
  }
}
