import { Logger } from '@nestjs/common';
import { ServerMqtt, type MessageHandler, type MqttOptions } from '@nestjs/microservices';
import type { MqttClient } from 'mqtt';
import { withTimeout } from '@shelfsight/common';
import { encodePayload, HUB_STATUS_TOPIC, HubStatusSchema, SCHEMA_VERSION, sharedSubscription } from '@shelfsight/contracts';

type MqttServerOptions = Required<MqttOptions>['options'];

/**
 * The `@nestjs/microservices` MQTT transport, adapted to the hub:
 * - with a share group, handlers subscribe through an MQTT 5 shared subscription
 *   (`$share/<group>/<filter>`), so hub replicas split device traffic instead of each
 *   receiving all of it; handler patterns stay plain topic filters;
 * - a handler that throws is logged and never takes the process down;
 * - the hub publishes to devices (acks) over this same connection;
 * - the handler of each topic is looked up once (Nest's lookup tries JSON.parse on the
 *   topic and catches the error, for every message).
 */
export class HubMqttServer extends ServerMqtt {
  private readonly log = new Logger(HubMqttServer.name);
  private readonly ready: Promise<MqttClient>;
  private resolveReady!: (client: MqttClient) => void;
  /** Handler per topic seen; bounded, as topics carry device ids. */
  private readonly handlerOfTopic = new Map<string, MessageHandler | null>();

  constructor(
    private readonly serverOptions: MqttServerOptions,
    private readonly shareGroup?: string,
  ) {
    super(serverOptions);
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
  }

  override createMqttClient(): MqttClient {
    const client = super.createMqttClient();
    this.resolveReady(client);
    return client;
  }

  override getHandlerByPattern(pattern: string): MessageHandler | null {
    let handler = this.handlerOfTopic.get(pattern);
    if (handler === undefined) {
      handler = super.getHandlerByPattern(pattern);
      if (this.handlerOfTopic.size >= 100_000) this.handlerOfTopic.clear();
      this.handlerOfTopic.set(pattern, handler);
    }
    return handler;
  }

  override bindEvents(mqttClient: MqttClient): void {
    mqttClient.on('message', (channel: string, buffer: Buffer, packet) => {
      this.handleMessage(channel, buffer, mqttClient, packet).catch((err: unknown) =>
        this.log.error(`handler for ${channel} failed: ${(err as Error).message}`),
      );
    });
    const subscribeOptions = this.serverOptions.subscribeOptions ?? { qos: 1 as const };
    const subscribed = [...this.messageHandlers.keys()].map((pattern) => {
      const topic = this.shareGroup ? sharedSubscription(this.shareGroup, pattern) : pattern;
      return mqttClient.subscribeAsync(topic, subscribeOptions).catch((err: Error) => this.log.error(`subscribe ${topic} failed: ${err.message}`));
    });
    // Tell devices a hub is listening, once subscribed and again after every reconnect
    // (mqtt.js resubscribes before 'connect', and the broker handles our packets in order),
    // so what they published while no hub was subscribed goes out again at once.
    let firstDone = false;
    void Promise.all(subscribed).then(() => {
      firstDone = true;
      return this.announce(mqttClient);
    });
    mqttClient.on('connect', () => {
      if (firstDone) void this.announce(mqttClient);
    });
  }

  private async announce(client: MqttClient): Promise<void> {
    const status = { v: SCHEMA_VERSION, hubId: String(this.serverOptions.clientId ?? 'hub'), status: 'online' as const, at: new Date().toISOString() };
    await client.publishAsync(HUB_STATUS_TOPIC, encodePayload(HubStatusSchema, status), { qos: 1 }).catch((err: Error) => {
      this.log.warn(`could not announce the hub: ${err.message}`);
    });
  }

  private closing?: Promise<void>;

  /**
   * Disconnect cleanly (and wait for it), so a broker stopping next sees no torn connection.
   * Idempotent: the hub closes its MQTT intake first, and Nest closes it again on app.close().
   */
  override close(): Promise<void> {
    this.closing ??= this.disconnect();
    return this.closing;
  }

  private async disconnect(): Promise<void> {
    const client = this.mqttClient;
    if (!client) return;
    // No reconnect once closing: a broker stopped first must not leave a reconnect timer behind.
    client.options.reconnectPeriod = 0;
    // Graceful (DISCONNECT) but bounded: a publish the broker never acknowledges must not hold shutdown.
    for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id));
    const ended = await withTimeout(client.endAsync().then(() => true, () => true), 3000);
    if (!ended) await client.endAsync(true).catch(() => undefined);
  }

  /** Publish raw bytes to a topic with QoS 1 (retained if asked; an empty retained payload clears it); resolves once the broker has it. */
  async publish(topic: string, payload: Buffer, opts: { retain?: boolean } = {}): Promise<void> {
    const client = await this.ready;
    await client.publishAsync(topic, payload, { qos: 1, retain: opts.retain === true });
  }

  get connected(): boolean {
    return this.mqttClient?.connected ?? false;
  }
}
