import { randomBytes } from 'node:crypto';
import { FakeDevice } from './support/fake-device';
import { eventually, startTestHub, type TestHub } from './support/test-hub';

interface LogLine {
  level: string;
  time: string;
  pid?: number;
  component?: string;
  context?: string;
  msg?: string;
  workerId?: string;
  childPid?: number;
  childComponent?: string;
  requestId?: string;
  req?: { id?: string; method?: string; url?: string; headers?: unknown };
  res?: { statusCode?: number };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('hub logs (pino, nestjs-pino)', () => {
  const lines: string[] = [];
  const parsed = () => lines.map((l) => JSON.parse(l) as LogLine);
  let sut: TestHub;

  beforeAll(async () => {
    // TRAINING_WORKER=child: the worker process's records are relayed through the hub's log.
    sut = await startTestHub('postgres', 'aedes', { TRAINING_WORKER: 'child' }, { logLevels: ['log', 'warn', 'error'], logDestination: { write: (s: string) => void lines.push(...s.split('\n').filter(Boolean)) } });
  });
  afterAll(async () => {
    await sut?.stop();
  });

  it('writes every line as JSON, Nest start-up and services included', () => {
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    const started = parsed().find((l) => l.context === 'Hub' && l.msg?.startsWith('REST API on'));
    expect(started).toMatchObject({ level: 'info', component: 'hub' });
    expect(Number.isNaN(Date.parse(started!.time))).toBe(false);
  });

  it("keeps Nest's start-up narration (InstanceLoader, RouterExplorer...) out of the info log", () => {
    const contexts = new Set(parsed().map((l) => l.context));
    expect(contexts).toContain('Hub');
    for (const framework of ['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestApplication']) expect(contexts).not.toContain(framework);
  });

  it("relays the training worker's records as records: its level, message and fields, not an escaped string", async () => {
    const ready = await eventually(async () => parsed().find((l) => l.context === 'TrainingWorker' && l.msg === 'training worker ready'), 60_000);
    expect(ready).toMatchObject({ level: 'info', component: 'hub', childComponent: 'worker', workerId: expect.stringContaining('-child-') as unknown });
    expect(ready.childPid).toEqual(expect.any(Number));
    expect(ready.childPid).not.toBe(ready.pid);
    expect(lines.some((l) => l.includes('\\"level\\"'))).toBe(false);
  }, 90_000);

  it('logs a request with the id it was sent with, and returns that id', async () => {
    const id = `test-${randomBytes(4).toString('hex')}`;
    const res = await fetch(`${sut.hub.httpUrl}/devices`, { headers: { 'X-Request-Id': id, 'X-API-Key': sut.apiKey } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    const line = await eventually(async () => parsed().find((l) => l.requestId === id));
    expect(line).toMatchObject({ level: 'info', component: 'hub', req: { id, method: 'GET', url: '/devices' }, res: { statusCode: 200 } });
    expect(line.req?.headers).toBeUndefined();
    expect(lines.join('\n')).not.toContain(sut.apiKey);
  });

  it('gives a request without a usable id a new one, in the log and the response', async () => {
    const cases: Array<Record<string, string>> = [{}, { 'X-Request-Id': 'two words' }];
    for (const headers of cases) {
      const res = await fetch(`${sut.hub.httpUrl}/inventory`, { headers });
      const id = res.headers.get('x-request-id');
      expect(id).toMatch(UUID);
      const line = await eventually(async () => parsed().find((l) => l.requestId === id));
      expect(line.req).toMatchObject({ url: '/inventory' });
    }
  });

  it("writes a Nest service's Logger call as JSON with its context", async () => {
    const device = await FakeDevice.connect(sut.hub.mqttUrl, `log-${randomBytes(3).toString('hex')}`);
    try {
      await device.sendRaw('detections', 'this is not json');
      const line = await eventually(async () => parsed().find((l) => l.context === 'Rejected' && l.msg?.includes(device.id)));
      expect(line).toMatchObject({ level: 'warn', component: 'hub' });
      expect(line.msg).toContain('invalid_json');
    } finally {
      await device.close();
    }
  });
});
