import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiForbiddenResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, type Principal } from '../auth/actor';
import { RequireRole } from '../auth/roles';
import { ZodBody, ZodParam } from '../common/zod-openapi';
import { ApiKeyDto, CreateApiKeySchema, CreatedApiKeyDto, KeyIdSchema, type CreateApiKey } from './api-key.dto';
import { ApiKeysService, type KeyPrincipal } from './api-keys.service';

@ApiTags('api keys')
@RequireRole('admin')
@Controller('api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @ApiOperation({ summary: 'Create an API key' })
  @Post()
  @ApiCreatedResponse({ type: CreatedApiKeyDto, description: 'the new key; its secret is shown only here' })
  @ApiForbiddenResponse({ description: 'the new key would have more power (role or lifetime) than the calling key' })
  create(@ZodBody(CreateApiKeySchema) body: CreateApiKey, @CurrentPrincipal() by: Principal): Promise<CreatedApiKeyDto> {
    return this.keys.create(body, by as KeyPrincipal);
  }

  @ApiOperation({ summary: 'List API keys' })
  @Get()
  @ApiOkResponse({ type: [ApiKeyDto], description: 'every key, revoked and expired ones included; never a secret' })
  list(): Promise<ApiKeyDto[]> {
    return this.keys.list();
  }

  @ApiOperation({ summary: 'Revoke an API key' })
  @Post(':id/revoke')
  @HttpCode(200)
  @ApiOkResponse({ type: ApiKeyDto, description: 'revoked: refused from now on (at once on this hub, within 5 s on other replicas)' })
  @ApiNotFoundResponse({ description: 'no such key' })
  revoke(@ZodParam('id', KeyIdSchema) id: string, @CurrentPrincipal() by: Principal): Promise<ApiKeyDto> {
    return this.keys.revoke(id, by);
  }
}
