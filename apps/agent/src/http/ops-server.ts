import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

/**
 * The agent's small local HTTP server: `GET /health`, `GET /metrics`, plus routes
 * other parts add (frame upload). Binds to localhost by default.
 */
export class OpsServer {
  private server: Server | undefined;
  private readonly routes = new Map<string, RouteHandler>();

  route(method: string, pathname: string, handler: RouteHandler): this {
    this.routes.set(`${method} ${pathname}`, handler);
    return this;
  }

  async listen(port: number, host: string): Promise<number> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handler = this.routes.get(`${req.method ?? 'GET'} ${url.pathname}`);
    try {
      if (!handler) {
        sendJson(res, 404, { error: 'not found' });
        return;
      }
      await handler(req, res, url);
    } catch (err) {
      if (!res.headersSent) sendJson(res, 500, { error: err instanceof Error ? err.message : 'internal error' });
      else res.end();
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function sendText(res: ServerResponse, status: number, body: string, contentType = 'text/plain; version=0.0.4'): void {
  res.writeHead(status, { 'content-type': contentType });
  res.end(body);
}
