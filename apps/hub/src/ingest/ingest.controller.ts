import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { allDevicesTopic, type ParsedDeviceTopic } from '@shelfsight/contracts';
import { DeviceTopic } from '../broker/device-topic.decorator';
import { IngestService } from './ingest.service';

/** MQTT entry point for detection batches from every device. */
@Controller()
export class IngestController {
  constructor(private readonly ingest: IngestService) {}

  @EventPattern(allDevicesTopic('detections'), { qos: 1 })
  async onDetections(@Payload() payload: unknown, @DeviceTopic() topic: ParsedDeviceTopic | undefined): Promise<void> {
    if (topic) await this.ingest.ingestBatch(topic.deviceId, payload);
  }
}
