import { Module } from '@nestjs/common';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { TrainingController } from './training.controller';
import { TrainingJobsRepository } from './training-jobs.repository';
import { TrainingService } from './training.service';
import { pgBossTrainingQueue, TRAINING_QUEUE_CLIENT } from './training-queue';
import { TrainingWorkerSupervisor } from './worker-supervisor';

/** Retraining jobs: REST API and queue here; training in a worker process (see worker/). */
@Module({
  controllers: [TrainingController],
  providers: [
    TrainingJobsRepository,
    TrainingService,
    TrainingWorkerSupervisor,
    { provide: TRAINING_QUEUE_CLIENT, inject: [HUB_CONFIG], useFactory: (config: HubConfig) => pgBossTrainingQueue(config.databaseUrl!) },
  ],
  exports: [TrainingService, TrainingWorkerSupervisor],
})
export class TrainingModule {}
