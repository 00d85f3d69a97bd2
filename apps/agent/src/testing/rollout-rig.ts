import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import { parsePayload, RolloutStatusSchema, type RolloutStatus } from '@shelfsight/contracts';
import { FakeHub } from './fake-hub';
import { TestBroker } from './test-broker';

/** What an agent's rollout tests run against: a broker, a fake hub, an operator client that sends offers and hears statuses, an artifact server. */
export interface RolloutRig {
  broker: TestBroker;
  hub: FakeHub;
  /** Publishes offers and commands; every rollout status on `statusTopic` goes into `statuses`. */
  operator: MqttClient;
  /** Serves `artifacts` by path (404 otherwise). */
  httpUrl: string;
  stop(): Promise<void>;
}

export interface RolloutRigOptions {
  operatorId: string;
  /** The rollout-status topic (filter) the operator listens on. */
  statusTopic: string;
  statuses: RolloutStatus[];
  artifacts: Map<string, Buffer>;
  /** Answer a download yourself (refuse, hold, record); `send` answers with the artifact or 404. */
  serve?: (req: IncomingMessage, res: ServerResponse, send: () => void) => void;
}

export async function startRolloutRig(opts: RolloutRigOptions): Promise<RolloutRig> {
  const broker = await TestBroker.start();
  const hub = await FakeHub.start(broker.url);
  const operator = await connectAsync(broker.url, { clientId: opts.operatorId, reconnectPeriod: 0 });
  operator.on('message', (_topic, payload) => {
    const s = parsePayload(RolloutStatusSchema, payload);
    if (s.ok) opts.statuses.push(s.value);
  });
  await operator.subscribeAsync(opts.statusTopic, { qos: 1 });
  const http = createServer((req, res) => {
    const send = () => {
      const body = opts.artifacts.get(req.url ?? '');
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    };
    if (opts.serve) opts.serve(req, res, send);
    else send();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    broker,
    hub,
    operator,
    httpUrl: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    async stop() {
      opts.statuses.length = 0;
      opts.artifacts.clear();
      await operator.endAsync();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
      await hub.stop();
      await broker.stop();
    },
  };
}
