import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import { keyIdOf, parsePayload, publicKeyBase64, RELEASE_KEYS_TOPIC, RolloutStatusSchema, signKeyList, type RolloutStatus, type SignedKeyList } from '@shelfsight/contracts';
import { FakeHub } from './fake-hub';
import { TestBroker } from './test-broker';

/** What an agent's rollout tests run against: a broker, a fake hub, an operator client that sends offers and hears statuses, an artifact server. */
export interface RolloutRig {
  broker: TestBroker;
  hub: FakeHub;
  /** Publishes offers and commands; every rollout status on `statusTopic` goes into `statuses`. */
  operator: MqttClient;
  /** Serves `artifacts` by path (404 otherwise), and the key list at /rollouts/key-list. */
  httpUrl: string;
  /** The offline root of this rig: devices are provisioned with it only. */
  root: KeyObject;
  /** The agent's --trusted-keys file: the root public key, `<keyid> <base64>`. */
  trustedKeysFile: string;
  /**
   * Sign a key list with the root and make it current: served at /rollouts/key-list and
   * (unless `retain` is false) retained on the release-keys topic. Returns it.
   */
  publishKeyList(version: number, keys: KeyObject[], opts?: { retain?: boolean; signer?: KeyObject; expiresAt?: string }): Promise<SignedKeyList>;
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
  /** The release keys the first key list (v1, published at start) names. */
  releaseKeys: KeyObject[];
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
  const root = generateKeyPairSync('ed25519').privateKey;
  let keyList: SignedKeyList | undefined;
  const publishKeyList: RolloutRig['publishKeyList'] = async (version, keys, o = {}) => {
    const now = Date.now();
    const signed = signKeyList(
      { version, issuedAt: new Date(now - 60_000).toISOString(), expiresAt: o.expiresAt ?? new Date(now + 86_400_000).toISOString(), keys: keys.map((publicKey) => ({ publicKey })) },
      o.signer ?? root,
    );
    keyList = signed;
    if (o.retain !== false) await operator.publishAsync(RELEASE_KEYS_TOPIC, Buffer.from(JSON.stringify(signed)), { qos: 1, retain: true });
    return signed;
  };
  await publishKeyList(1, opts.releaseKeys);
  const http = createServer((req, res) => {
    if (req.url === '/rollouts/key-list') {
      return void (keyList ? res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keyList)) : res.writeHead(404).end());
    }
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
    root,
    trustedKeysFile: `${keyIdOf(root)} ${publicKeyBase64(root)}\n`,
    publishKeyList,
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
