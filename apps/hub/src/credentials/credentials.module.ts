import { Module } from '@nestjs/common';
import { ApiKeyGuard } from './api-key.guard';
import { CredentialsController } from './credentials.controller';
import { CredentialsService } from './credentials.service';

@Module({ controllers: [CredentialsController], providers: [CredentialsService, ApiKeyGuard] })
export class CredentialsModule {}
