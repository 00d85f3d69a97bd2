import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import Aedes, { createBroker } from 'aedes';

export interface EmbeddedBroker {
  /** URL devices and the hub itself connect to (on loopback). */
  url: string;
  port: number;
  broker: Aedes;
  stop(): Promise<void>;
}

/** The aedes MQTT broker inside the hub process: the default when no MQTT_URL is given. */
export async function startEmbeddedBroker(port: number, host: string): Promise<EmbeddedBroker> {
  const broker = createBroker();
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
