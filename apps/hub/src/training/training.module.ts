import { Module } from '@nestjs/common';
import { TrainingController } from './training.controller';
import { TrainingJobsRepository } from './training-jobs.repository';
import { TrainingService } from './training.service';
import { TrainingWorkerSupervisor } from './worker-supervisor';

/** Retraining jobs: REST API and queue here; training in a worker process (see worker/). */
@Module({
  controllers: [TrainingController],
  providers: [TrainingJobsRepository, TrainingService, TrainingWorkerSupervisor],
  exports: [TrainingService, TrainingWorkerSupervisor],
})
export class TrainingModule {}
