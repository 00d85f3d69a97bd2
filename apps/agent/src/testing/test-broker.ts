import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createBroker } from 'aedes';

/** An in-process aedes broker for agent tests; `restart()` simulates an outage on the same port. */
export class TestBroker {
  private server: Server | undefined;
  private closeBroker: (() => Promise<void>) | undefined;
  port = 0;

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  static async start(port = 0): Promise<TestBroker> {
    const b = new TestBroker();
    await b.listen(port);
    return b;
  }

  private async listen(port: number): Promise<void> {
    const broker = createBroker();
    const server = createServer(broker.handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.closeBroker = () => new Promise<void>((resolve) => broker.close(() => resolve()));
  }

  /** Drop every connection and stop listening (clients see the broker die). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await this.closeBroker?.();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Start again on the same port. */
  async restart(): Promise<void> {
    await this.listen(this.port);
  }
}
