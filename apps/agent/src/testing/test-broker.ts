import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createBroker, type AuthenticateError } from 'aedes';

/** An in-process aedes broker for agent tests; `restart()` simulates an outage on the same port. */
export class TestBroker {
  private server: Server | undefined;
  private closeBroker: (() => Promise<void>) | undefined;
  port = 0;

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** `users`: username → password; when given, other credentials are refused (CONNACK 4). */
  constructor(private readonly users?: Record<string, string>) {}

  static async start(port = 0, users?: Record<string, string>): Promise<TestBroker> {
    const b = new TestBroker(users);
    await b.listen(port);
    return b;
  }

  private async listen(port: number): Promise<void> {
    const users = this.users;
    const broker = createBroker(
      users
        ? {
            authenticate: (_client, username, password, done) => {
              const ok = username !== undefined && users[username] !== undefined && users[username] === password?.toString();
              if (ok) return done(null, true);
              const err = Object.assign(new Error('bad credentials'), { returnCode: 4 });
              done(err as AuthenticateError, false);
            },
          }
        : {},
    );
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
