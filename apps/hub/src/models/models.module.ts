import { Module } from '@nestjs/common';
import { BacklogRescorer, RESCORE_TRIGGER } from './backlog-rescorer';
import { ModelsController } from './models.controller';
import { ModelsRepository } from './models.repository';
import { ModelsService } from './models.service';

/** The model registry: versions, frozen evaluation sets, the gate, and the backlog re-score. */
@Module({ controllers: [ModelsController], providers: [ModelsService, ModelsRepository, BacklogRescorer, { provide: RESCORE_TRIGGER, useExisting: BacklogRescorer }], exports: [ModelsService, ModelsRepository] })
export class ModelsModule {}
