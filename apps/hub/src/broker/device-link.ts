import { deviceTopic, encodePayload, AckSchema, FrameRequestSchema, type Ack, type FrameRequest } from '@shelfsight/contracts';
import type { HubMqttServer } from './hub-mqtt.server';

export const DEVICE_LINK = Symbol('DEVICE_LINK');

/** What the hub sends to devices. Narrow on purpose: services depend on this, not on MQTT. */
export interface DeviceLink {
  sendAck(ack: Ack): Promise<void>;
  /** Ask a device for one of its recent frames (it answers on frame-reply). */
  sendFrameRequest(req: FrameRequest): Promise<void>;
  readonly connected: boolean;
}

export class MqttDeviceLink implements DeviceLink {
  constructor(private readonly server: HubMqttServer) {}

  async sendAck(ack: Ack): Promise<void> {
    await this.server.publish(deviceTopic(ack.deviceId, 'ack'), encodePayload(AckSchema, ack));
  }

  async sendFrameRequest(req: FrameRequest): Promise<void> {
    await this.server.publish(deviceTopic(req.deviceId, 'frame-request'), encodePayload(FrameRequestSchema, req));
  }

  get connected(): boolean {
    return this.server.connected;
  }
}
