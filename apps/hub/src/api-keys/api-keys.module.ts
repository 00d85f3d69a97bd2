import { Module } from '@nestjs/common';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysRepository } from './api-keys.repository';
import { ApiKeysService, CLOCK } from './api-keys.service';

@Module({
  controllers: [ApiKeysController],
  providers: [ApiKeysService, ApiKeysRepository, { provide: CLOCK, useValue: Date.now }],
  exports: [ApiKeysService],
})
export class ApiKeysModule {}
