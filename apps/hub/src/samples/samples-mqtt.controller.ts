import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { allDevicesTopic, type ParsedDeviceTopic } from '@shelfsight/contracts';
import { DeviceTopic } from '../broker/device-topic.decorator';
import { SampleIntakeService } from './sample-intake.service';

/** MQTT entry point for samples and frame replies from every device. */
@Controller()
export class SamplesMqttController {
  constructor(private readonly intake: SampleIntakeService) {}

  @EventPattern(allDevicesTopic('samples'), { qos: 1 })
  onSample(@Payload() payload: unknown, @DeviceTopic() topic: ParsedDeviceTopic | undefined): void {
    if (topic) this.intake.acceptSample(topic.deviceId, payload);
  }

  @EventPattern(allDevicesTopic('frame-reply'), { qos: 1 })
  onFrameReply(@Payload() payload: unknown, @DeviceTopic() topic: ParsedDeviceTopic | undefined): void {
    if (topic) this.intake.acceptFrameReply(topic.deviceId, payload);
  }
}
