import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MqttContext, Payload } from '@nestjs/microservices';
import { allDevicesTopic, parseDeviceTopic } from '@shelfsight/contracts';
import { IngestService } from './ingest.service';

/** MQTT entry point for detection batches from every device. */
@Controller()
export class IngestController {
  constructor(private readonly ingest: IngestService) {}

  @EventPattern(allDevicesTopic('detections'), { qos: 1 })
  async onDetections(@Payload() payload: unknown, @Ctx() ctx: MqttContext): Promise<void> {
    const topic = parseDeviceTopic(ctx.getTopic());
    if (!topic) return;
    await this.ingest.ingestBatch(topic.deviceId, payload);
  }
}
