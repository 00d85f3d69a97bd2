import { Global, Module } from '@nestjs/common';
import { AuditController } from './audit.controller';
import { AuditRepository } from './audit.repository';
import { AuditService } from './audit.service';
import { DeniedRequestAudit } from './denied-requests';

@Global()
@Module({ controllers: [AuditController], providers: [AuditService, AuditRepository, DeniedRequestAudit], exports: [AuditService, DeniedRequestAudit] })
export class AuditModule {}
