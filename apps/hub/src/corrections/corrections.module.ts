import { Module } from '@nestjs/common';
import { CategoriesModule } from '../categories/categories.module';
import { SamplesModule } from '../samples/samples.module';
import { CorrectionsController } from './corrections.controller';
import { CorrectionsRepository } from './corrections.repository';
import { CorrectionsService } from './corrections.service';

@Module({
  imports: [CategoriesModule, SamplesModule],
  controllers: [CorrectionsController],
  providers: [CorrectionsRepository, CorrectionsService],
  exports: [CorrectionsRepository],
})
export class CorrectionsModule {}
