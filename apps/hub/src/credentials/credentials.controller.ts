import { Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { DeviceIdSchema } from '@shelfsight/contracts';
import { MqttAccessControl } from '../broker/mqtt-access-control';
import { RequireRole } from '../auth/roles';
import { ZodPipe } from '../common/zod-query.pipe';
import { CredentialStatusDto, IssuedCredentialDto } from './credential.dto';
import { CredentialsService } from './credentials.service';

const deviceIdPipe = new ZodPipe(
  DeviceIdSchema.refine((id) => !id.startsWith(MqttAccessControl.HUB_CLIENT_ID_PREFIX), `ids starting with ${MqttAccessControl.HUB_CLIENT_ID_PREFIX} belong to hub processes`),
  'id',
);

@ApiTags('device credentials')
@RequireRole('admin')
@Controller('devices/:id/credentials')
export class CredentialsController {
  constructor(private readonly credentials: CredentialsService) {}

  @Post()
  @ApiCreatedResponse({ type: IssuedCredentialDto, description: 'a new password for the device (creates or rotates; re-enables); shown only here' })
  issue(@Param('id', deviceIdPipe) id: string): Promise<IssuedCredentialDto> {
    return this.credentials.issue(id);
  }

  @Get()
  @ApiOkResponse({ type: CredentialStatusDto })
  @ApiNotFoundResponse({ description: 'no credential provisioned for this device' })
  status(@Param('id', deviceIdPipe) id: string): Promise<CredentialStatusDto> {
    return this.credentials.status(id);
  }

  @Delete()
  @HttpCode(200)
  @ApiOkResponse({ type: CredentialStatusDto, description: 'disabled: the device is disconnected and refused at its next connect' })
  @ApiNotFoundResponse({ description: 'no credential provisioned for this device' })
  disable(@Param('id', deviceIdPipe) id: string): Promise<CredentialStatusDto> {
    return this.credentials.disable(id);
  }
}
