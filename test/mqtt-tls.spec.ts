import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { AckSchema, deviceTopic, parsePayload, SCHEMA_VERSION } from '@shelfsight/contracts';
import { detection } from './support/fake-device';
import { startTestHub, type TestHub } from './support/test-hub';

/** A CA and a server certificate for `localhost` / 127.0.0.1 signed by it, made with openssl. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ShelfSight test CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'hub.key', '-out', 'hub.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'hub.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'hub.pem', '-days', '2', '-extfile', 'ext.cnf');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'hub.pem'), key: join(dir, 'hub.key') };
}

describe('MQTT over TLS on the embedded broker', () => {
  const tag = randomBytes(3).toString('hex');
  let dir: string;
  let certs: { ca: string; cert: string; key: string };
  let sut: TestHub;
  const open: MqttClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shelfsight-tls-'));
    certs = makeCertificates(dir);
    sut = await startTestHub('pglite', 'aedes', { MQTT_TLS_CERT: certs.cert, MQTT_TLS_KEY: certs.key });
  });

  afterAll(async () => {
    for (const c of open) await c.endAsync(true).catch(() => undefined);
    await sut?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a device that trusts the test CA, end to end: detections stored and acknowledged', async () => {
    expect(sut.hub.mqttUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const id = `tls-${tag}`;
    const client = await connectAsync(sut.hub.mqttUrl.replace('127.0.0.1', 'localhost'), { clientId: id, ca: readFileSync(certs.ca), reconnectPeriod: 0 });
    open.push(client);
    const acked = new Promise<number[]>((resolve) =>
      client.on('message', (_t, payload) => {
        const ack = parsePayload(AckSchema, payload);
        if (ack.ok) resolve(ack.value.seqs);
      }),
    );
    await client.subscribeAsync(deviceTopic(id, 'ack'), { qos: 1 });
    const batch = { v: SCHEMA_VERSION, deviceId: id, epoch: 'e1', sentAt: new Date().toISOString(), detections: [detection(1, { site: `tls-${tag}` })] };
    await client.publishAsync(deviceTopic(id, 'detections'), JSON.stringify(batch), { qos: 1 });
    expect(await acked).toEqual([1]);
  });

  it('refuses a device that does not trust the certificate, and plain MQTT on the TLS port', async () => {
    const { port } = new URL(sut.hub.mqttUrl);
    const untrusting = await new Promise<Error>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), servername: 'localhost' }, () => reject(new Error('handshake succeeded without the CA')));
      socket.once('error', resolve);
    });
    expect(untrusting.message).toMatch(/unable to verify|self.signed|certificate/i);
    // A plain MQTT CONNECT gets no CONNACK: the connection ends.
    const plain = netConnect({ host: '127.0.0.1', port: Number(port) });
    const received: Buffer[] = [];
    plain.on('data', (d: Buffer) => received.push(d));
    plain.on('error', () => undefined);
    const ended = new Promise<void>((r) => plain.once('close', () => r()));
    plain.write(Buffer.from([0x10, 0x10, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x1e, 0x00, 0x04, 0x70, 0x6c, 0x61, 0x6e]));
    await ended;
    expect(Buffer.concat(received).includes(Buffer.from([0x20, 0x02]))).toBe(false);
  });
});
