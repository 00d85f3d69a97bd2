import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Ctx, EventPattern, MqttContext, Payload } from '@nestjs/microservices';
import { allDevicesTopic, parseDeviceTopic } from '@shelfsight/contracts';
import { DeviceDto } from './device.dto';
import { DevicesService } from './devices.service';
import { RequireRole } from '../auth/roles';

@ApiTags('devices')
@RequireRole('viewer')
@Controller()
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  @Get('devices')
  @ApiOkResponse({ type: [DeviceDto], description: 'known devices, online or not, with when they were last seen' })
  list(): Promise<DeviceDto[]> {
    return this.devices.list();
  }

  @EventPattern(allDevicesTopic('birth'), { qos: 1 })
  async onBirth(@Payload() payload: unknown, @Ctx() ctx: MqttContext): Promise<void> {
    const t = parseDeviceTopic(ctx.getTopic());
    if (t) await this.devices.onBirth(t.deviceId, payload);
  }

  @EventPattern(allDevicesTopic('death'), { qos: 1 })
  async onDeath(@Payload() payload: unknown, @Ctx() ctx: MqttContext): Promise<void> {
    const t = parseDeviceTopic(ctx.getTopic());
    if (t) await this.devices.onDeath(t.deviceId, payload);
  }

  @EventPattern(allDevicesTopic('heartbeat'), { qos: 0 })
  async onHeartbeat(@Payload() payload: unknown, @Ctx() ctx: MqttContext): Promise<void> {
    const t = parseDeviceTopic(ctx.getTopic());
    if (t) await this.devices.onHeartbeat(t.deviceId, payload);
  }
}
