import { Module } from '@nestjs/common';
import { DetectionWriter } from './detection-writer';
import { IngestController } from './ingest.controller';
import { IngestService } from './ingest.service';

@Module({ controllers: [IngestController], providers: [DetectionWriter, IngestService] })
export class IngestModule {}
