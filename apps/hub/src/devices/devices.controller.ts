import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { EventPattern, Payload } from '@nestjs/microservices';
import { allDevicesTopic, type ParsedDeviceTopic } from '@shelfsight/contracts';
import { DeviceTopic } from '../broker/device-topic.decorator';
import { DeviceDto } from './device.dto';
import { DevicesService } from './devices.service';
import { RequireRole } from '../auth/roles';

@ApiTags('devices')
@RequireRole('viewer')
@Controller()
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  @ApiOperation({ summary: 'List devices' })
  @Get('devices')
  @ApiOkResponse({ type: [DeviceDto], description: 'known devices, online or not, with when they were last seen' })
  list(): Promise<DeviceDto[]> {
    return this.devices.list();
  }

  @EventPattern(allDevicesTopic('birth'), { qos: 1 })
  async onBirth(@Payload() payload: unknown, @DeviceTopic() topic: ParsedDeviceTopic | undefined): Promise<void> {
    if (topic) await this.devices.onBirth(topic.deviceId, payload);
  }

  @EventPattern(allDevicesTopic('death'), { qos: 1 })
  async onDeath(@Payload() payload: unknown, @DeviceTopic() topic: ParsedDeviceTopic | undefined): Promise<void> {
    if (topic) await this.devices.onDeath(topic.deviceId, payload);
  }

  @EventPattern(allDevicesTopic('heartbeat'), { qos: 0 })
  async onHeartbeat(@Payload() payload: unknown, @DeviceTopic() topic: ParsedDeviceTopic | undefined): Promise<void> {
    if (topic) await this.devices.onHeartbeat(topic.deviceId, payload);
  }
}
