import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import Aedes, { createBroker, type AedesOptions } from 'aedes';
import { MqttAccessControl } from './mqtt-access-control';
import type { MqttLimits } from './mqtt-limits';

export interface EmbeddedBroker {
  /** URL devices and the hub itself connect to (on loopback); mqtts:// with TLS. */
  url: string;
  tls: boolean;
  port: number;
  broker: Aedes;
  stop(): Promise<void>;
}

/**
 * The aedes MQTT broker inside the hub process: the default when no MQTT_URL is given.
 * With `access` (MQTT_AUTH=on) it admits only provisioned devices, each under its own id.
 * With `limits`, every connection passes its packet size, publish rate and topic limits.
 */
export interface BrokerTls {
  /** PEM certificate chain and private key. */
  cert: Buffer;
  key: Buffer;
}

export async function startEmbeddedBroker(port: number, host: string, access?: MqttAccessControl, limits?: MqttLimits, tls?: BrokerTls): Promise<EmbeddedBroker> {
  const broker = createBroker(limits ? withLimits(limits, access?.hooks() ?? {}) : (access?.hooks() ?? {}));
  if (limits) {
    broker.on('client', (client) => {
      if (client.id.startsWith(MqttAccessControl.HUB_CLIENT_ID_PREFIX)) limits.exempt(client.conn as Duplex);
    });
  }
  const onConnection = limits ? (socket: Socket) => broker.handle(limits.wrap(socket)) : (socket: Socket) => broker.handle(socket);
  // With TLS the broker listens for TLS only: a plain connection fails its handshake.
  const server: Server = tls ? createTlsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, onConnection) : createServer(onConnection);
  if (tls) server.on('tlsClientError', () => undefined); // a failed handshake is that client's problem
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${actual}`,
    port: actual,
    tls: tls !== undefined,
    broker,
    async stop() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The topic limits in front of the access hooks (a refused topic never reaches them). */
function withLimits(limits: MqttLimits, hooks: Partial<AedesOptions>): Partial<AedesOptions> {
  return {
    ...hooks,
    preConnect: (client, packet, done) => {
      // An empty id is the broker's to assign; anything else must be a plain topic level.
      if (packet.clientId && limits.clientIdRefused(packet.clientId)) {
        limits.refuse('client_id', `client id ${JSON.stringify(packet.clientId.slice(0, 80))}`);
        return done(null, false);
      }
      if (hooks.preConnect) return hooks.preConnect(client, packet, done);
      done(null, true);
    },
    authorizePublish: (client, packet, done) => {
      const reason = limits.topicRefusal(packet.topic);
      if (reason) {
        limits.refuse(reason, `publish by ${JSON.stringify(client?.id ?? null)}`);
        return done(new Error(`publish refused (${reason})`));
      }
      if (hooks.authorizePublish) return hooks.authorizePublish(client, packet, done);
      done(null);
    },
    authorizeForward: (client, packet) => {
      if (limits.forwardRefused(client.conn as Duplex, packet.topic)) {
        limits.refuse('hub_queue_full', `detections from ${packet.topic.split('/')[3] ?? '?'} not forwarded to ${JSON.stringify(client.id)}: ${limits.hubQueueBytes} bytes queued toward it`);
        return null;
      }
      return hooks.authorizeForward ? hooks.authorizeForward(client, packet) : packet;
    },
    authorizeSubscribe: (client, sub, done) => {
      const reason = limits.topicRefusal(sub.topic);
      if (reason) {
        limits.refuse(reason, `subscribe by ${JSON.stringify(client?.id ?? null)}`);
        return done(null, null);
      }
      if (hooks.authorizeSubscribe) return hooks.authorizeSubscribe(client, sub, done);
      done(null, sub);
    },
  };
}

/** Messages published to the broker that wait for a delivery slot (aedes' mqemitter queue, bounded by its `concurrency`). */
export function brokerBacklog(broker: EmbeddedBroker): number {
  return (broker.broker as unknown as { mq?: { length?: number } }).mq?.length ?? 0;
}
