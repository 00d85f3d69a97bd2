import { Module } from '@nestjs/common';
import { CategoriesModule } from '../categories/categories.module';
import { FrameRequester } from './frame-requester';
import { SampleIntakeService } from './sample-intake.service';
import { SamplePurgeService } from './sample-purge.service';
import { SampleWriter } from './sample-writer';
import { SamplesController } from './samples.controller';
import { SamplesMqttController } from './samples-mqtt.controller';
import { SamplesRepository } from './samples.repository';
import { SamplesService } from './samples.service';
import { SimilarIndex } from './similar-index';

@Module({
  imports: [CategoriesModule],
  controllers: [SamplesMqttController, SamplesController],
  providers: [SamplesRepository, FrameRequester, SampleWriter, SampleIntakeService, SamplePurgeService, SamplesService, SimilarIndex],
  exports: [SampleWriter, SamplePurgeService, FrameRequester],
})
export class SamplesModule {}
