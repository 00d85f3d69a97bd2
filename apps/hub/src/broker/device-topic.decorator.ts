import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { MqttContext } from '@nestjs/microservices';
import { parseDeviceTopic, type ParsedDeviceTopic } from '@shelfsight/contracts';

/**
 * The device topic an MQTT handler's message arrived on (`shelfsight/v1/devices/<id>/<channel>`),
 * parsed; undefined for a topic outside the scheme (the handler ignores the message).
 * The one place hub handlers read the device id from the topic:
 *
 *   @EventPattern(allDevicesTopic('birth')) onBirth(@Payload() p: unknown, @DeviceTopic() topic?: ParsedDeviceTopic)
 */
export const DeviceTopic = createParamDecorator((_: unknown, ctx: ExecutionContext): ParsedDeviceTopic | undefined =>
  deviceTopicOf(ctx.switchToRpc().getContext<MqttContext>()),
);

/** The same, for code that holds the MqttContext itself. */
export function deviceTopicOf(ctx: MqttContext): ParsedDeviceTopic | undefined {
  return parseDeviceTopic(ctx.getTopic());
}
