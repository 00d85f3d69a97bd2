import {
  deviceTopic,
  encodePayload,
  AckSchema,
  FrameRequestSchema,
  ModelCommandSchema,
  ModelOfferSchema,
  RELEASE_KEYS_TOPIC,
  SignedKeyListSchema,
  type Ack,
  type FrameRequest,
  type ModelCommand,
  type ModelOffer,
  type SignedKeyList,
} from '@shelfsight/contracts';
import type { HubMqttServer } from './hub-mqtt.server';

export const DEVICE_LINK = Symbol('DEVICE_LINK');

/** What the hub sends to devices. Narrow on purpose: services depend on this, not on MQTT. */
export interface DeviceLink {
  sendAck(ack: Ack): Promise<void>;
  /** Ask a device for one of its recent frames (it answers on frame-reply). */
  sendFrameRequest(req: FrameRequest): Promise<void>;
  /** Offer a signed head: retained on the device's `model-offer` topic, so an offline device gets it when it connects. */
  sendModelOffer(offer: ModelOffer): Promise<void>;
  /** Clear the device's retained offer (an empty retained payload). */
  clearModelOffer(deviceId: string): Promise<void>;
  /** Rollback / cancel (not retained). */
  sendModelCommand(cmd: ModelCommand): Promise<void>;
  /** The current root-signed release key list, retained for every device. */
  sendReleaseKeys(signed: SignedKeyList): Promise<void>;
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

  async sendModelOffer(offer: ModelOffer): Promise<void> {
    await this.server.publish(deviceTopic(offer.deviceId, 'model-offer'), encodePayload(ModelOfferSchema, offer), { retain: true });
  }

  async clearModelOffer(deviceId: string): Promise<void> {
    await this.server.publish(deviceTopic(deviceId, 'model-offer'), Buffer.alloc(0), { retain: true });
  }

  async sendModelCommand(cmd: ModelCommand): Promise<void> {
    await this.server.publish(deviceTopic(cmd.deviceId, 'model-command'), encodePayload(ModelCommandSchema, cmd));
  }

  async sendReleaseKeys(signed: SignedKeyList): Promise<void> {
    await this.server.publish(RELEASE_KEYS_TOPIC, encodePayload(SignedKeyListSchema, signed), { retain: true });
  }

  get connected(): boolean {
    return this.server.connected;
  }
}
