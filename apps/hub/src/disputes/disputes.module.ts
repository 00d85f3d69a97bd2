import { Module } from '@nestjs/common';
import { IngestModule } from '../ingest/ingest.module';
import { SamplesModule } from '../samples/samples.module';
import { DisagreementChecker } from './disagreement-checker';
import { DisputesRepository } from './disputes.repository';

@Module({ imports: [IngestModule, SamplesModule], providers: [DisputesRepository, DisagreementChecker], exports: [DisputesRepository, DisagreementChecker] })
export class DisputesModule {}
