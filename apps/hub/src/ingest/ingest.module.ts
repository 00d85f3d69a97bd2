import { Module } from '@nestjs/common';
import { DetectionWriter } from './detection-writer';
import { IngestController } from './ingest.controller';
import { IngestRepository } from './ingest.repository';
import { IngestService } from './ingest.service';

@Module({ controllers: [IngestController], providers: [DetectionWriter, IngestRepository, IngestService] })
export class IngestModule {}
