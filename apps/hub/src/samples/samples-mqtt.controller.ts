import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MqttContext, Payload } from '@nestjs/microservices';
import { allDevicesTopic, parseDeviceTopic } from '@shelfsight/contracts';
import { SampleIntakeService } from './sample-intake.service';

/** MQTT entry point for samples and frame replies from every device. */
@Controller()
export class SamplesMqttController {
  constructor(private readonly intake: SampleIntakeService) {}

  @EventPattern(allDevicesTopic('samples'), { qos: 1 })
  onSample(@Payload() payload: unknown, @Ctx() ctx: MqttContext): void {
    const topic = parseDeviceTopic(ctx.getTopic());
    if (!topic) return;
    this.intake.acceptSample(topic.deviceId, payload);
  }

  @EventPattern(allDevicesTopic('frame-reply'), { qos: 1 })
  onFrameReply(@Payload() payload: unknown, @Ctx() ctx: MqttContext): void {
    const topic = parseDeviceTopic(ctx.getTopic());
    if (!topic) return;
    this.intake.acceptFrameReply(topic.deviceId, payload);
  }
}
