import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, type Principal } from './actor';
import { ROLES, RequireRole, type Role } from './roles';

export class WhoAmIDto {
  @ApiProperty({ description: '`key:<key id>` for an API key, `anonymous` for the demo\u2019s open read access' })
  id!: string;
  @ApiProperty({ enum: ROLES })
  role!: Role;
  @ApiProperty({ description: 'no key was sent (the demo lets anonymous callers read)' })
  anonymous!: boolean;
}

/** `GET /auth/me`: who the presented key is, so the console offers only what its role may do. */
@ApiTags('auth')
@Controller('auth')
export class WhoAmIController {
  @ApiOperation({ summary: 'Show the caller\'s principal and role' })
  @Get('me')
  @RequireRole('viewer')
  @ApiOkResponse({ type: WhoAmIDto })
  me(@CurrentPrincipal() principal: Principal): WhoAmIDto {
    return { id: principal.id, role: principal.role, anonymous: principal.id === 'anonymous' };
  }
}
