import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/roles';
import { ZodQuery } from '../common/zod-openapi';
import { AuditPageDto, AuditQuerySchema, type AuditQuery } from './audit.dto';
import { AuditService } from './audit.service';

@ApiTags('audit')
@RequireRole('admin')
@Controller('audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @ApiOperation({ summary: 'Search the audit log' })
  @Get()
  @ApiOkResponse({ type: AuditPageDto, description: 'state-changing requests, newest first; filter by actor, route (prefix), method, from/to; page with cursor' })
  find(@ZodQuery(AuditQuerySchema) q: AuditQuery): Promise<AuditPageDto> {
    return this.audit.find(q);
  }
}
