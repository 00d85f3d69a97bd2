import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import Aedes, { createBroker } from 'aedes';
import type { MqttAccessControl } from './mqtt-access-control';

export interface EmbeddedBroker {
  /** URL devices and the hub itself connect to (on loopback). */
  url: string;
  port: number;
  broker: Aedes;
  stop(): Promise<void>;
}

/**
 * The aedes MQTT broker inside the hub process: the default when no MQTT_URL is given.
 * With `access` (MQTT_AUTH=on) it admits only provisioned devices, each under its own id.
 */
export async function startEmbeddedBroker(port: number, host: string, access?: MqttAccessControl): Promise<EmbeddedBroker> {
  const broker = createBroker(access ? access.hooks() : {});
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${actual}`,
    port: actual,
    broker,
    async stop() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
