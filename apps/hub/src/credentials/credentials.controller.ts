import { Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { DeviceIdSchema } from '@shelfsight/contracts';
import { MqttAccessControl } from '../broker/mqtt-access-control';
import { RequireRole } from '../auth/roles';
import { ZodParam } from '../common/zod-openapi';
import { CredentialStatusDto, IssuedCredentialDto } from './credential.dto';
import { CredentialsService } from './credentials.service';

const DeviceIdParamSchema = DeviceIdSchema.refine((id) => !id.startsWith(MqttAccessControl.HUB_CLIENT_ID_PREFIX), `ids starting with ${MqttAccessControl.HUB_CLIENT_ID_PREFIX} belong to hub processes`);

@ApiTags('device credentials')
@RequireRole('admin')
@Controller('devices/:id/credentials')
export class CredentialsController {
  constructor(private readonly credentials: CredentialsService) {}

  @ApiOperation({ summary: 'Issue or rotate a device\'s MQTT password' })
  @Post()
  @ApiCreatedResponse({ type: IssuedCredentialDto, description: 'a new password for the device (creates or rotates; re-enables); shown only here' })
  issue(@ZodParam('id', DeviceIdParamSchema) id: string): Promise<IssuedCredentialDto> {
    return this.credentials.issue(id);
  }

  @ApiOperation({ summary: 'Show a device\'s credential status' })
  @Get()
  @ApiOkResponse({ type: CredentialStatusDto })
  @ApiNotFoundResponse({ description: 'no credential provisioned for this device' })
  status(@ZodParam('id', DeviceIdParamSchema) id: string): Promise<CredentialStatusDto> {
    return this.credentials.status(id);
  }

  @ApiOperation({ summary: 'Disable a device\'s credential' })
  @Delete()
  @HttpCode(200)
  @ApiOkResponse({ type: CredentialStatusDto, description: 'disabled: the device is disconnected and refused at its next connect' })
  @ApiNotFoundResponse({ description: 'no credential provisioned for this device' })
  disable(@ZodParam('id', DeviceIdParamSchema) id: string): Promise<CredentialStatusDto> {
    return this.credentials.disable(id);
  }
}
