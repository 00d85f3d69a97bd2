import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Request } from 'express';
import { bodyLimitMiddleware } from './body-limit.middleware';

describe(bodyLimitMiddleware.name, () => {
  let server: Server;
  let url: string;
  let refused = 0;

  beforeAll(async () => {
    // The hub's rule: model uploads have their own, larger bound.
    const limitFor = (req: Request) => (req.method === 'POST' && req.path === '/models' ? 500 : 100);
    const app = express();
    app.use(bodyLimitMiddleware(limitFor, () => refused++));
    app.post('*splat', express.raw({ type: () => true, limit: 10_000 }), (req, res) => {
      res.json({ bytes: (req.body as Buffer).length });
    });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = (path: string, bytes: number) => fetch(`${url}${path}`, { method: 'POST', body: Buffer.alloc(bytes, 1), headers: { 'content-type': 'application/octet-stream' } });

  it('refuses a body over the limit of its route with 413, and counts it', async () => {
    const before = refused;
    const res = await post('/samples/labels', 101);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toContain('100 bytes');
    expect(refused).toBe(before + 1);
    expect((await post('/samples/labels', 100)).status).toBe(200);
  });

  it('lets the route with a larger bound take a body the default would refuse, up to its own bound', async () => {
    const ok = await post('/models', 400);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ bytes: 400 });
    expect((await post('/models', 501)).status).toBe(413);
  });
});
