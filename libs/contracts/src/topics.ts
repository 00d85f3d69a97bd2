/**
 * The MQTT topic scheme. Every topic a device or the hub uses is built here and
 * nowhere else. Version 1 lives under `shelfsight/v1/`.
 *
 *   shelfsight/v1/devices/{deviceId}/birth        device → hub   (QoS 1)
 *   shelfsight/v1/devices/{deviceId}/death        device → hub   (QoS 1, also the MQTT last will)
 *   shelfsight/v1/devices/{deviceId}/heartbeat    device → hub   (QoS 0)
 *   shelfsight/v1/devices/{deviceId}/detections   device → hub   (QoS 1)
 *   shelfsight/v1/devices/{deviceId}/ack          hub → device   (QoS 1)
 *   shelfsight/v1/devices/{deviceId}/samples      device → hub   (QoS 1, best effort: frames to label)
 *   shelfsight/v1/devices/{deviceId}/frame-request hub → device  (QoS 1, "send me frame X")
 *   shelfsight/v1/devices/{deviceId}/frame-reply  device → hub   (QoS 1, the frame or "no longer held")
 *   shelfsight/v1/devices/{deviceId}/model-offer  hub → device   (QoS 1, retained: a signed head to install, see rollout.ts)
 *   shelfsight/v1/devices/{deviceId}/rollout-status device → hub (QoS 1, what became of an offer)
 *   shelfsight/v1/devices/{deviceId}/model-command hub → device  (QoS 1, rollback / cancel, see rollout.ts)
 */
export const TOPIC_ROOT = 'shelfsight/v1';

export const DEVICE_CHANNELS = ['birth', 'death', 'heartbeat', 'detections', 'ack', 'samples', 'frame-request', 'frame-reply', 'model-offer', 'rollout-status', 'model-command'] as const;
export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];

/** Channels a device publishes on (under its own id only) and the ones it subscribes to: the broker ACL. */
export const DEVICE_PUBLISH_CHANNELS: readonly DeviceChannel[] = ['birth', 'death', 'heartbeat', 'detections', 'samples', 'frame-reply', 'rollout-status'];
export const DEVICE_SUBSCRIBE_CHANNELS: readonly DeviceChannel[] = ['ack', 'frame-request', 'model-offer', 'model-command'];

/**
 * Hub → all devices: a hub (re)joined the broker and is subscribed. Devices publish again
 * everything not yet acknowledged, instead of waiting out their ack timeout.
 */
export const HUB_STATUS_TOPIC = `${TOPIC_ROOT}/hub/status`;

/**
 * Hub → all devices (QoS 1, retained): the current root-signed release key list
 * (`key-list.ts`). A device takes it only when a root it trusts signed it with a higher version.
 */
export const RELEASE_KEYS_TOPIC = `${TOPIC_ROOT}/hub/release-keys`;

/** Device ids appear in topics, so they may not contain MQTT wildcards or separators. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function deviceTopic(deviceId: string, channel: DeviceChannel): string {
  if (!DEVICE_ID_PATTERN.test(deviceId)) {
    throw new Error(`invalid device id "${deviceId}": expected ${DEVICE_ID_PATTERN.source}`);
  }
  return `${TOPIC_ROOT}/devices/${deviceId}/${channel}`;
}

/** Subscription filter matching one channel of every device, e.g. all detections. */
export function allDevicesTopic(channel: DeviceChannel): string {
  return `${TOPIC_ROOT}/devices/+/${channel}`;
}

/**
 * MQTT 5 shared subscription: hub replicas subscribing with the same group split the
 * messages between them instead of each receiving every one.
 */
export function sharedSubscription(group: string, filter: string): string {
  return `$share/${group}/${filter}`;
}

export interface ParsedDeviceTopic {
  deviceId: string;
  channel: DeviceChannel;
}

/** Inverse of {@link deviceTopic}; returns undefined for topics outside the scheme. */
export function parseDeviceTopic(topic: string): ParsedDeviceTopic | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT || parts[2] !== 'devices') {
    return undefined;
  }
  const [, , , deviceId, channel] = parts as [string, string, string, string, string];
  if (!DEVICE_ID_PATTERN.test(deviceId)) return undefined;
  if (!(DEVICE_CHANNELS as readonly string[]).includes(channel)) return undefined;
  return { deviceId, channel: channel as DeviceChannel };
}
