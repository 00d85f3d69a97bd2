import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { allDevicesTopic, type ParsedDeviceTopic } from '@shelfsight/contracts';
import { DeviceTopic } from '../broker/device-topic.decorator';
import { RolloutsService } from './rollouts.service';

/** MQTT entry points of rollouts: what devices report about offers, and births (re-offer). */
@Controller()
export class RolloutsMqttController {
  constructor(private readonly rollouts: RolloutsService) {}

  @EventPattern(allDevicesTopic('rollout-status'), { qos: 1 })
  async onStatus(@Payload() payload: unknown, @DeviceTopic() topic: ParsedDeviceTopic | undefined): Promise<void> {
    if (topic) await this.rollouts.onStatus(topic.deviceId, payload);
  }

  /** Besides DevicesController's handler of the same topic (Nest runs every event handler of a pattern). */
  @EventPattern(allDevicesTopic('birth'), { qos: 1 })
  async onBirth(@Payload() _payload: unknown, @DeviceTopic() topic: ParsedDeviceTopic | undefined): Promise<void> {
    if (topic) await this.rollouts.onBirth(topic.deviceId);
  }
}
