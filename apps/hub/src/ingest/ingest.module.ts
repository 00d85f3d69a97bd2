import { Module } from '@nestjs/common';
import { CommittedDetections } from './committed-detections';
import { DetectionWriter } from './detection-writer';
import { IngestController } from './ingest.controller';
import { IngestRepository } from './ingest.repository';
import { IngestService } from './ingest.service';

@Module({ controllers: [IngestController], providers: [CommittedDetections, DetectionWriter, IngestRepository, IngestService], exports: [CommittedDetections] })
export class IngestModule {}
