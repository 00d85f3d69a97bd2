import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { deviceTopic } from '@shelfsight/contracts';
import { detection, FakeDevice } from './support/fake-device';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from './support/test-hub';

const MB = 1024 * 1024;

/** This process's resident memory now and at its peak since the last reset (Linux), in MB. */
function memory(): { rssMb: number; peakMb: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Math.round(Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024);
  return { rssMb: field('VmRSS'), peakMb: field('VmHWM') };
}
function resetPeak(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not Linux, or not allowed: the peak is then since process start
  }
}

/** Write `total` bytes of zeros after `head` in 1 MB chunks until the peer closes; how many bytes went out. */
async function stream(socket: Socket, head: Buffer, total: number): Promise<number> {
  let sent = 0;
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => (closed = true));
  socket.write(head);
  const chunk = Buffer.alloc(MB);
  while (sent < total && !closed) {
    const ok = socket.write(chunk);
    sent += chunk.length;
    if (!ok) await new Promise<void>((r) => { socket.once('drain', r); socket.once('close', r); });
  }
  return sent;
}

describe('hostile input: size and rate limits (embedded broker, REST)', () => {
  let sut: TestHub;
  let honest: FakeDevice;
  const tag = randomBytes(3).toString('hex');
  const site = `hostile-${tag}`;
  const open: MqttClient[] = [];
  const metric = async (line: string): Promise<number> => {
    const text = await (await hubFetch(`${sut.hub.httpUrl}/metrics`)).text();
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    return found ? Number(found.split(' ').pop()) : 0;
  };
  /** The honest device keeps sending; its next batch must be acknowledged. */
  let seq = 0;
  const honestBatch = async () => {
    seq += 1;
    await honest.sendDetections([detection(seq, { site, location: `A-0${seq % 10}-1-A` })]);
    await honest.waitForAcks([seq], 20_000);
  };

  beforeAll(async () => {
    sut = await startTestHub('pglite', 'aedes', { MQTT_RATE_PER_S: '50', MQTT_BURST: '100', HTTP_RATE_PER_MINUTE: '400', HTTP_MAX_BODY_BYTES: String(MB) });
    honest = await FakeDevice.connect(sut.hub.mqttUrl, `honest-${tag}`);
    await honestBatch();
  });

  afterAll(async () => {
    for (const c of open) await c.endAsync(true).catch(() => undefined);
    await honest?.close();
    await sut?.stop();
  });

  it('refuses a 100 MB MQTT packet from its header, with bounded memory, while another device is served', async () => {
    const { port } = new URL(sut.hub.mqttUrl);
    const socket = netConnect({ host: '127.0.0.1', port: Number(port) });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const connectPacket = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `big-${tag}`, keepalive: 30 });
    socket.write(connectPacket);
    await new Promise((r) => setTimeout(r, 200));
    // PUBLISH, QoS 0, announcing 100 MB: type byte then the remaining length as a varint.
    const topic = deviceTopic(`big-${tag}`, 'detections');
    const length = 100 * MB;
    const varint = encodeLength(length);
    const head = Buffer.concat([Buffer.from([0x30]), varint, Buffer.from([topic.length >> 8, topic.length & 0xff]), Buffer.from(topic)]);
    resetPeak();
    const before = memory();
    const [sent] = await Promise.all([stream(socket, head, length), honestBatch()]);
    const after = memory();
    process.stderr.write(`100 MB MQTT packet: connection closed after ${Math.round(sent / MB)} MB sent; test process RSS ${before.rssMb} -> ${after.rssMb} MB, peak ${after.peakMb} MB\n`);
    expect(sent).toBeLessThan(length);
    expect(after.peakMb - before.rssMb).toBeLessThan(100);
    expect(await metric('shelfsight_mqtt_refused_total{reason="packet_too_large"}')).toBe(1);
    await honestBatch();
  });

  it('refuses a 100 MB HTTP body with 413 before reading it, for JSON with a length and for a chunked stream', async () => {
    const { hostname, port } = new URL(sut.hub.httpUrl);
    const send = (headers: Record<string, string | number>) =>
      new Promise<{ status: number; sent: number; body: string }>((resolve, reject) => {
        let sent = 0;
        let done = false;
        const req = request({ host: hostname, port: Number(port), method: 'POST', path: '/api-keys', headers: { 'Content-Type': 'application/json', 'X-API-Key': sut.apiKey, ...headers } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => {
            done = true;
            resolve({ status: res.statusCode ?? 0, sent, body });
          });
        });
        req.on('error', (e) => (done ? undefined : reject(e)));
        const chunk = Buffer.alloc(MB, 0x20);
        const pump = () => {
          while (!done && sent < 100 * MB) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          if (!done) req.end();
        };
        pump();
      });
    resetPeak();
    const before = memory();
    const withLength = await send({ 'Content-Length': 100 * MB });
    const chunked = await send({ 'Transfer-Encoding': 'chunked' });
    const after = memory();
    process.stderr.write(`100 MB HTTP bodies: 413 after ${Math.round(withLength.sent / MB)} MB (Content-Length) and ${Math.round(chunked.sent / MB)} MB (chunked) sent; test process RSS ${before.rssMb} -> ${after.rssMb} MB, peak ${after.peakMb} MB\n`);
    expect(withLength.status).toBe(413);
    expect(chunked.status).toBe(413);
    expect(JSON.parse(withLength.body)).toMatchObject({ statusCode: 413, error: 'too_large' });
    expect(withLength.sent).toBeLessThan(100 * MB);
    expect(chunked.sent).toBeLessThan(100 * MB);
    expect(after.peakMb - before.rssMb).toBeLessThan(100);
    expect(await metric('shelfsight_http_body_refused_total{reason="too_large"}')).toBe(2);
    await honestBatch();
  });

  it('answers malformed JSON with 400, not 500, and sends security headers', async () => {
    const res = await hubFetch(`${sut.hub.httpUrl}/api-keys`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name": "x", "role": ' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ statusCode: 400 });
    const health = await fetch(`${sut.hub.httpUrl}/health`);
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    expect(health.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(health.headers.get('content-security-policy')).toContain("default-src 'self'");
    // The console shows thumbnails fetched with the key header as blob: URLs; nothing else is widened.
    expect(health.headers.get('content-security-policy')).toContain("img-src 'self' data: blob:");
    expect(health.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(health.headers.get('x-powered-by')).toBeNull();
  });

  it('drops publishes beyond the per-client rate, then disconnects the client, without starving the honest device', async () => {
    const flooder = await connectAsync(sut.hub.mqttUrl, { clientId: `flood-${tag}`, reconnectPeriod: 0 });
    open.push(flooder);
    const closed = new Promise<void>((r) => flooder.once('close', () => r()));
    const topic = deviceTopic(`flood-${tag}`, 'heartbeat');
    let published = 0;
    while (flooder.connected && published < 5000) {
      flooder.publish(topic, 'x', { qos: 0 });
      published += 1;
      if (published % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    await closed;
    expect(await metric('shelfsight_mqtt_refused_total{reason="rate"}')).toBeGreaterThan(0);
    expect(await metric('shelfsight_mqtt_refused_total{reason="rate_abuse"}')).toBe(1);
    await honestBatch();
  });

  it('refuses topics deeper or longer than devices use', async () => {
    const deep = await connectAsync(sut.hub.mqttUrl, { clientId: `deep-${tag}`, reconnectPeriod: 0 });
    open.push(deep);
    const gone = new Promise<void>((r) => deep.once('close', () => r()));
    deep.publish(`${deviceTopic(`deep-${tag}`, 'detections')}/a/b/c/d/e`, '{}', { qos: 1 });
    await gone;
    const long = await connectAsync(sut.hub.mqttUrl, { clientId: `long-${tag}`, reconnectPeriod: 0 });
    open.push(long);
    // SUBACK 0x80 for the filter (mqtt.js reports it as an error); the client stays connected.
    await expect(long.subscribeAsync(`shelfsight/v1/${'x'.repeat(300)}`, { qos: 1 })).rejects.toThrow(/Subscribe error/);
    expect(long.connected).toBe(true);
    expect(await metric('shelfsight_mqtt_refused_total{reason="topic_too_deep"}')).toBe(1);
    expect(await metric('shelfsight_mqtt_refused_total{reason="topic_too_long"}')).toBe(1);
    await honestBatch();
  });

  it('refuses client ids with wildcard or path characters', async () => {
    for (const clientId of [`a/b-${tag}`, `x+${tag}`, `y#${tag}`]) {
      await expect(connectAsync(sut.hub.mqttUrl, { clientId, reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow();
    }
    expect(await metric('shelfsight_mqtt_refused_total{reason="client_id"}')).toBe(3);
    await honestBatch();
  });

  it('limits REST requests per key with 429, counted, leaving other keys alone', async () => {
    const created = await hubFetch(`${sut.hub.httpUrl}/api-keys`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'busy', role: 'viewer' }) });
    const busy = ((await created.json()) as { key: string }).key;
    const statuses: number[] = [];
    for (let i = 0; i < 410; i++) statuses.push((await hubFetch(`${sut.hub.httpUrl}/devices`, { apiKey: busy })).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(400);
    expect(statuses.slice(400).every((s) => s === 429)).toBe(true);
    expect(await metric('shelfsight_http_rate_limited_total')).toBe(10);
    expect((await getJson(`${sut.hub.httpUrl}/devices`)).status).toBe(200);
    // Every honest detection was stored exactly once.
    await eventually(async () => {
      const page = (await getJson<{ items: Array<{ seq: number }> }>(`${sut.hub.httpUrl}/detections?site=${site}&limit=1000`)).body;
      const seqs = page.items.map((d) => d.seq).sort((a, b) => a - b);
      return seqs.length === seq && new Set(seqs).size === seq ? true : undefined;
    });
  });
});

function encodeLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}
