/**
 * Hostile-input fuzz run (`npm run test:fuzz`): a hub process (embedded broker and PGlite)
 * takes thousands of malformed, oversized, deeply nested, wrongly typed and
 * prototype-polluting payloads on every MQTT topic a device may publish to, and on every
 * REST route its OpenAPI document lists (bodies, queries, path parameters), while an
 * honest device streams detections beside them. Generation is seeded with fast-check
 * (FUZZ_SEED reproduces a run). At the end it checks:
 * - the hub process is still up and healthy (crashed: 5xx answers, dropped connections,
 *   a dead process);
 * - every bad MQTT payload on a handled channel was refused with a reason (the hub's
 *   rejection counter, or the broker's limit counter, went up by exactly that many);
 *   every REST refusal is a 4xx with a message;
 * - every honest detection is stored exactly once (lost, duplicated).
 * Its last line is one JSON object (cases = refused + accepted + ignored + crashed, where
 * accepted are REST calls that were valid after all, ignored are MQTT payloads on channels
 * this hub has no handler for); exit code 1 when anything failed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { connectAsync, type MqttClient } from 'mqtt';
import type { z } from 'zod';
import { AckSchema, BirthSchema, DeathSchema, DetectionBatchSchema, deviceTopic, FrameReplySchema, HeartbeatSchema, parsePayload, SampleSchema, SCHEMA_VERSION, type DeviceChannel } from '@shelfsight/contracts';
import { freePort, processMemoryMb, spawnShelf, waitForHttp } from '@shelfsight/cli';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const MQTT_CASES = Number(process.env.FUZZ_MQTT_CASES ?? 3000);
const REST_CASES = Number(process.env.FUZZ_REST_CASES ?? 3000);
const HONEST_BATCHES = Number(process.env.FUZZ_HONEST_BATCHES ?? 150);
const MAX_PACKET = 256 * 1024;
const MAX_BODY = 256 * 1024;
/** Device→hub channels the hub has a handler for: a bad payload there must be counted as refused. */
const HANDLED: DeviceChannel[] = ['birth', 'death', 'heartbeat', 'detections', 'samples', 'frame-reply'];
const SCHEMAS: Partial<Record<DeviceChannel, z.ZodType>> = {
  birth: BirthSchema,
  death: DeathSchema,
  heartbeat: HeartbeatSchema,
  detections: DetectionBatchSchema,
  samples: SampleSchema,
  'frame-reply': FrameReplySchema,
};

/** Sum of the series of a Prometheus counter whose labels match `labels` (a regex fragment). */
function counterSum(text: string, name: string, labels = ''): number {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.eE+-]+)$`, 'gm'))]
    .filter((m) => new RegExp(labels).test(m[0]))
    .reduce((n, m) => n + Number(m[1]), 0);
}
const CHANNELS: DeviceChannel[] = ['birth', 'death', 'heartbeat', 'detections', 'samples', 'frame-reply'];

const t0 = Date.now();
const log = (msg: string) => process.stderr.write(`[fuzz +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `p`, or an error naming what was awaited after `ms`: the harness reports a stuck step, it never hangs on one. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`stuck for ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- payload generators

const nowIso = () => new Date().toISOString();
const validDetection = (seq: number, site: string) => ({
  seq,
  frameId: `f-${seq}`,
  site,
  location: `A-0${seq % 10}-1-A`,
  capturedAt: new Date(Date.now() - 60_000 + seq).toISOString(),
  category: 'milk',
  confidence: 0.9,
  topK: [{ category: 'milk', confidence: 0.9 }],
  modelVersion: 'fuzz',
  latencyMs: 5,
});
const validFor = (channel: DeviceChannel, deviceId: string): Record<string, unknown> => {
  switch (channel) {
    case 'detections':
      return { v: SCHEMA_VERSION, deviceId, epoch: 'fuzz-epoch', sentAt: nowIso(), detections: [validDetection(1, 'fuzz-site')] };
    case 'birth':
      return { v: SCHEMA_VERSION, deviceId, kind: 'sim', site: 'fuzz-site', agentVersion: '1', backboneId: 'b', modelVersion: 'm', startedAt: nowIso(), epoch: 'fuzz-epoch' };
    case 'death':
      return { v: SCHEMA_VERSION, deviceId, reason: 'lost' };
    default:
      return { v: SCHEMA_VERSION, deviceId, sentAt: nowIso(), uptimeS: 1, framesPerS: 1, p95LatencyMs: 1, queueDepth: 0, outboxDepth: 0, outboxBytes: 0 };
  }
};

/** Values of the wrong kind for any field. */
const wrongValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.constantFrom(-1, 1e308, Number.MAX_SAFE_INTEGER + 2, 0.5),
  fc.string({ maxLength: 40 }),
  fc.string({ minLength: 300, maxLength: 2000 }),
  fc.array(fc.anything(), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.anything(), { maxKeys: 4 }),
);
const POLLUTING_KEYS = ['__proto__', 'constructor', 'prototype'];
const pollution = fc.constantFrom(
  '{"__proto__":{"isAdmin":true,"role":"admin"}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"__proto__":null,"v":"x"}',
  '[{"__proto__":{"length":1e9}}]',
);

/** A bad payload as bytes, and what kind it is. Every one of them must be refused. */
function badPayloadArb(channel: DeviceChannel, deviceId: string): fc.Arbitrary<{ kind: string; payload: Buffer }> {
  const valid = validFor(channel, deviceId);
  const fields = Object.keys(valid);
  const text = (kind: string) => (s: string) => ({ kind, payload: Buffer.from(s) });
  return fc.oneof(
    // wrongly typed: a valid payload with one field of the wrong type, or missing
    fc.record({ field: fc.constantFrom(...fields), value: wrongValue, drop: fc.boolean() }).map(({ field, value, drop }) => {
      const copy: Record<string, unknown> = { ...valid };
      if (drop) delete copy[field];
      else copy[field] = value;
      if (!drop && field !== 'detections' && field !== 'v' && field !== 'deviceId' && typeof value === typeof valid[field]) copy.v = 'wrong';
      return { kind: 'wrong_type', payload: Buffer.from(JSON.stringify(copy)) };
    }),
    // anything at all that is not an object of the right shape
    fc.jsonValue().map((v) => ({ kind: 'random_json', payload: Buffer.from(JSON.stringify({ junk: v })) })),
    fc.anything().map((v) => ({ kind: 'random_value', payload: Buffer.from(JSON.stringify([v]) ?? '[]') })),
    fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((b) => ({ kind: 'binary', payload: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(b)]) })),
    fc.string({ maxLength: 200 }).map(text('malformed_text')).map((c) => ({ ...c, payload: Buffer.from(`{${c.payload.toString()}`) })),
    // deeply nested arrays and objects
    fc.integer({ min: 500, max: 50_000 }).map((n) => ({ kind: 'deep_array', payload: Buffer.from('['.repeat(n) + ']'.repeat(n)) })),
    fc.integer({ min: 500, max: 20_000 }).map((n) => ({ kind: 'deep_object', payload: Buffer.from('{"a":'.repeat(n) + '1' + '}'.repeat(n)) })),
    // prototype pollution, alone or mixed into an otherwise wrong payload
    pollution.map(text('pollution')),
    fc.constantFrom(...POLLUTING_KEYS).map((k) => ({ kind: 'pollution', payload: Buffer.from(`{"${k}":${JSON.stringify(valid)},"v":0}`) })),
    // too many detections, in a batch that still fits a packet
    fc.integer({ min: 501, max: 900 }).map((n) => ({
      kind: 'oversized_batch',
      payload: Buffer.from(JSON.stringify({ ...validFor('detections', deviceId), detections: Array.from({ length: n }, (_, i) => validDetection(i + 1, 's')) })),
    })),
    // a payload naming another device
    fc.constant({ kind: 'device_mismatch', payload: Buffer.from(JSON.stringify({ ...valid, deviceId: `${deviceId}-other` })) }),
  );
}

// ---------------------------------------------------------------- the honest device

interface Honest {
  sent: number;
  done: Promise<void>;
  stop(): void;
}

/** Streams numbered batches at a steady pace, resending what stays unacknowledged, as a real outbox does. */
function honestDevice(client: MqttClient, deviceId: string, site: string, batches: number): Honest {
  const acked = new Set<number>();
  const sentAt = new Map<number, number>();
  let stopped = false;
  const perBatch = 4;
  const state: Honest = { sent: 0, done: Promise.resolve(), stop: () => (stopped = true) };
  client.on('message', (_t, payload) => {
    const ack = parsePayload(AckSchema, payload);
    if (ack.ok) for (const s of ack.value.seqs) acked.add(s);
  });
  const publish = (batch: number) => {
    const detections = Array.from({ length: perBatch }, (_, i) => validDetection((batch - 1) * perBatch + i + 1, site));
    sentAt.set(batch, Date.now());
    client.publish(deviceTopic(deviceId, 'detections'), JSON.stringify({ v: SCHEMA_VERSION, deviceId, epoch: 'honest', sentAt: nowIso(), detections }), { qos: 1 });
  };
  state.done = (async () => {
    await client.subscribeAsync(deviceTopic(deviceId, 'ack'), { qos: 1 });
    for (let b = 1; b <= batches && !stopped; b++) {
      publish(b);
      state.sent = b * perBatch;
      await sleep(200);
    }
    const deadline = Date.now() + 60_000;
    while (!stopped && Date.now() < deadline) {
      const missing = [...sentAt.keys()].filter((b) => !acked.has(b * perBatch));
      if (missing.length === 0) return;
      for (const b of missing) if (Date.now() - sentAt.get(b)! > 5000) publish(b);
      await sleep(250);
    }
  })();
  return state;
}

// ---------------------------------------------------------------- REST

interface OpenApi {
  paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>>;
}

const weirdString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '..', '../../etc/passwd', '%00', '\u0000', 'null', 'NaN', '-1', '1e999', "' OR 1=1 --", '<script>'),
  fc.string({ minLength: 1000, maxLength: 5000 }),
);
const queryArb = (names: string[]) =>
  fc.array(
    fc.tuple(fc.oneof(fc.constantFrom(...(names.length ? names : ['x'])), fc.constantFrom('__proto__', 'constructor[prototype][x]', 'a[]', 'limit', 'cursor'), fc.string({ maxLength: 10 })), weirdString),
    { minLength: 1, maxLength: 6 },
  );
const bodyArb = fc.oneof(
  fc.anything().map((v) => ({ kind: 'random', body: JSON.stringify(v) ?? 'null', type: 'application/json' })),
  fc.jsonValue().map((v) => ({ kind: 'random', body: JSON.stringify(v), type: 'application/json' })),
  pollution.map((b) => ({ kind: 'pollution', body: b, type: 'application/json' })),
  fc.constantFrom(...POLLUTING_KEYS).map((k) => ({ kind: 'pollution', body: `{"name":"x","role":"viewer","${k}":{"role":"admin"}}`, type: 'application/json' })),
  fc.integer({ min: 500, max: 20_000 }).map((n) => ({ kind: 'deep', body: '['.repeat(n) + ']'.repeat(n), type: 'application/json' })),
  fc.string({ maxLength: 100 }).map((s) => ({ kind: 'malformed', body: `{${s}`, type: 'application/json' })),
  fc.string({ maxLength: 100 }).map((s) => ({ kind: 'wrong_content_type', body: s, type: fc.sample(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml'), 1)[0]! })),
  fc.constant({ kind: 'oversized', body: 'x', type: 'application/json' }),
);

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-fuzz-'));
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const apiKey = randomBytes(24).toString('base64url');
  const hub = spawnShelf(['hub'], {
    HTTP_PORT: String(httpPort),
    HTTP_HOST: '127.0.0.1',
    MQTT_PORT: String(mqttPort),
    MQTT_HOST: '127.0.0.1',
    DATA_DIR: join(work, 'hub'),
    DATABASE_URL: '',
    MQTT_URL: '',
    HUB_API_KEY: apiKey,
    // The handlers are the target: any client may publish as any device.
    MQTT_AUTH: 'off',
    HTTP_RATE_PER_MINUTE: '1000000',
    HTTP_MAX_BODY_BYTES: String(MAX_BODY),
    MQTT_MAX_PACKET_BYTES: String(MAX_PACKET),
    MQTT_RATE_PER_S: '100000',
    MQTT_BURST: '100000',
    LOG_LEVEL: 'warn',
  });
  let hubDied = false;
  void hub.exited.then((code) => {
    hubDied = true;
    log(`hub exited with ${code}`);
  });
  const base = `http://127.0.0.1:${httpPort}`;
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const result = { seed: SEED, cases: 0, mqtt_cases: 0, rest_cases: 0, refused: 0, accepted: 0, ignored: 0, crashed: 0, unrefused: 0, lost: 0, duplicated: 0, honest_sent: 0, honest_stored: 0, hub_rss_start_mb: 0, hub_peak_rss_mb: 0, by_kind: {} as Record<string, number> };
  const failures: string[] = [];
  const metrics = async () => (await fetch(`${base}/metrics`, { headers: { 'X-API-Key': apiKey } })).text();
  try {
    await waitForHttp(`${base}/health`, 120_000, () => (hubDied ? `hub died while starting:\n${hub.stderr().slice(-3000)}` : undefined));
    log(`hub up (seed ${SEED}); honest device streaming, ${MQTT_CASES} MQTT and ${REST_CASES} REST cases`);

    result.hub_rss_start_mb = processMemoryMb(hub.child.pid, 'VmRSS') ?? 0;
    const honestSite = `honest-${randomBytes(3).toString('hex')}`;
    const honestId = `honest-${randomBytes(3).toString('hex')}`;
    const honestClient = await connectAsync(mqttUrl, { clientId: honestId, reconnectPeriod: 1000 });
    const honest = honestDevice(honestClient, honestId, honestSite, HONEST_BATCHES);

    // --- MQTT: one fuzzing client per channel mix; oversized packets on their own connections.
    const before = await metrics();
    const sentPerChannel = new Map<string, number>();
    let limitCases = 0;
    const fuzzer = await connectAsync(mqttUrl, { clientId: `fuzzer-${randomBytes(3).toString('hex')}`, reconnectPeriod: 500 });
    const channelArb = fc.constantFrom(...CHANNELS);
    const cases = fc.sample(
      channelArb.chain((channel) => {
        const deviceId = `fz-${channel.slice(0, 3)}`;
        return badPayloadArb(channel, deviceId).map((c) => ({ ...c, channel, deviceId }));
      }),
      { seed: SEED, numRuns: MQTT_CASES },
    );
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      if (c.payload.length + 200 > MAX_PACKET) continue; // sent below as an oversize case
      // A mutation that happens to be valid is no bad input: leave it out.
      const schema = SCHEMAS[c.channel];
      if (schema && parsePayload(schema, c.payload).ok) continue;
      while (!fuzzer.connected) await sleep(50);
      fuzzer.publish(deviceTopic(c.deviceId, c.channel), c.payload, { qos: 0 });
      result.by_kind[`mqtt_${c.kind}`] = (result.by_kind[`mqtt_${c.kind}`] ?? 0) + 1;
      if (HANDLED.includes(c.channel)) sentPerChannel.set(c.channel, (sentPerChannel.get(c.channel) ?? 0) + 1);
      else result.ignored += 1; // no handler for this channel in this hub: nothing reads it
      result.mqtt_cases += 1;
      if (i % 50 === 0) await sleep(5);
    }
    // Oversized packets, bad topics: refused by the broker's limits (the connection closes).
    for (let i = 0; i < 10; i++) {
      const socket = netConnect({ host: '127.0.0.1', port: mqttPort });
      // Listening for the end before anything else: a connection the broker drops at once still ends the wait.
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.on('error', () => undefined);
      await within(Promise.race([new Promise<void>((r) => socket.once('connect', () => r())), closed]), 10_000, `oversized packet ${i + 1}: TCP connect`);
      const connectPacket = Buffer.from([0x10, 0x12, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x1e, 0x00, 0x06, ...Buffer.from(`big-${i}0`)]);
      socket.write(connectPacket);
      const topic = deviceTopic(`big-${i}0`, 'detections');
      const len = MAX_PACKET * 4 + 2 + topic.length;
      const varint: number[] = [];
      let n = len;
      do {
        let b = n % 128;
        n = Math.floor(n / 128);
        if (n > 0) b |= 0x80;
        varint.push(b);
      } while (n > 0);
      socket.write(Buffer.concat([Buffer.from([0x30, ...varint, topic.length >> 8, topic.length & 0xff]), Buffer.from(topic), Buffer.alloc(MAX_PACKET * 4)]));
      await within(closed, 10_000, `oversized packet ${i + 1}: the broker closing the connection`);
      limitCases += 1;
    }
    for (const topic of [`${deviceTopic('fz-deep', 'detections')}/a/b/c/d/e/f`, `shelfsight/v1/devices/${'x'.repeat(400)}/detections`]) {
      // allowRetries false: a connection closed before its CONNACK rejects instead of waiting forever.
      const c = await within(connectAsync(mqttUrl, { clientId: `fz-topic-${limitCases}`, reconnectPeriod: 0 }, false), 10_000, `topic case ${topic.slice(0, 60)}: connect`);
      const gone = new Promise<void>((r) => c.once('close', () => r()));
      c.publish(topic, '{}', { qos: 1 });
      await within(gone, 10_000, `topic case ${topic.slice(0, 60)}: the broker closing the connection`);
      await c.endAsync(true);
      limitCases += 1;
    }
    result.mqtt_cases += limitCases;
    result.by_kind.mqtt_limits = limitCases;

    // --- REST: every route of the OpenAPI document; bodies, queries, path parameters.
    const doc = (await (await fetch(`${base}/docs-json`)).json()) as OpenApi;
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), params: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name) })),
    );
    const restCases = fc.sample(
      fc.record({
        route: fc.constantFrom(...routes),
        pathValue: weirdString,
        withKey: fc.double({ min: 0, max: 1, noNaN: true }),
        body: bodyArb,
        q: fc.boolean(),
      }),
      { seed: SEED + 1, numRuns: REST_CASES },
    );
    const queries = new Map(routes.map((r) => [r, fc.sample(queryArb(r.params), { seed: SEED + 2, numRuns: 50 })]));
    let restIndex = 0;
    const worker = async () => {
      for (;;) {
        const i = restIndex++;
        if (i >= restCases.length) return;
        const c = restCases[i]!;
        const path = c.route.path.replace(/\{(\w+)\}/g, () => encodeURIComponent(c.pathValue));
        const qs = c.q ? queries.get(c.route)![i % 50]!.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&') : '';
        const hasBody = c.route.method !== 'GET' && c.route.method !== 'HEAD';
        const body = hasBody ? (c.body.kind === 'oversized' ? 'x'.repeat(MAX_BODY + 10) : c.body.body) : undefined;
        const headers: Record<string, string> = {};
        if (c.withKey > 0.1) headers['X-API-Key'] = apiKey;
        if (hasBody) headers['Content-Type'] = c.body.type;
        const kind = `rest_${hasBody ? c.body.kind : c.q ? 'query' : 'path'}`;
        result.by_kind[kind] = (result.by_kind[kind] ?? 0) + 1;
        result.rest_cases += 1;
        try {
          const res = await fetch(`${base}${path}${qs ? `?${qs}` : ''}`, { method: c.route.method, headers, body });
          // A live stream (GET /events) never ends: its status is the answer.
          if (res.ok && res.headers.get('content-type')?.startsWith('text/event-stream')) {
            await res.body?.cancel();
            result.accepted += 1;
            continue;
          }
          const text = await res.text();
          if (res.status >= 500) {
            result.crashed += 1;
            if (failures.length < 20) failures.push(`${c.route.method} ${path}?${qs.slice(0, 200)} -> ${res.status} ${text.slice(0, 200)}`);
          } else if (res.status >= 400) {
            result.refused += 1;
            let message: unknown;
            try {
              message = (JSON.parse(text) as { message?: unknown }).message;
            } catch {
              message = undefined;
            }
            if (message === undefined || message === '') {
              result.unrefused += 1;
              if (failures.length < 20) failures.push(`${c.route.method} ${path} -> ${res.status} without a reason: ${text.slice(0, 200)}`);
            }
          } else result.accepted += 1;
        } catch (err) {
          result.crashed += 1;
          if (failures.length < 20) failures.push(`${c.route.method} ${path}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    log(`REST done: ${result.rest_cases} cases`);

    // --- Accounting: every bad MQTT payload on a handled channel refused with a reason.
    const expectMqtt = [...sentPerChannel.values()].reduce((a, b) => a + b, 0);
    const refusedOf = (text: string) =>
      HANDLED.reduce((n, ch) => n + counterSum(text, 'shelfsight_payloads_rejected_total', `channel="${ch}"`), 0) + counterSum(text, 'shelfsight_mqtt_refused_total');
    const base0 = refusedOf(before);
    let mqttRefused = 0;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      mqttRefused = refusedOf(await metrics()) - base0;
      if (mqttRefused >= expectMqtt + limitCases) break;
      await sleep(250);
    }
    result.refused += mqttRefused;
    const mqttUnrefused = Math.max(0, expectMqtt + limitCases - mqttRefused);
    result.unrefused += mqttUnrefused;
    if (mqttUnrefused > 0) failures.push(`${mqttUnrefused} bad MQTT payloads were not counted as refused (sent ${expectMqtt} on handled channels + ${limitCases} over limits, refused ${mqttRefused})`);

    await honest.done;
    honest.stop();
    result.honest_sent = honest.sent;
    const seqs: number[] = [];
    let cursor: string | null = null;
    do {
      const page = (await (await fetch(`${base}/detections?site=${honestSite}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { headers: { 'X-API-Key': apiKey } })).json()) as { items: Array<{ seq: number }>; nextCursor: string | null };
      seqs.push(...page.items.map((d) => d.seq));
      cursor = page.nextCursor;
    } while (cursor);
    const unique = new Set(seqs);
    result.honest_stored = seqs.length;
    result.duplicated = seqs.length - unique.size;
    result.lost = Array.from({ length: honest.sent }, (_, i) => i + 1).filter((s) => !unique.has(s)).length;
    await honestClient.endAsync(true);
    await fuzzer.endAsync(true);

    const health = await fetch(`${base}/health`).then((r) => r.status).catch(() => 0);
    if (health !== 200 || hubDied) {
      result.crashed += 1;
      failures.push(`hub not healthy at the end (health ${health}, exited ${hubDied})`);
    }
    result.hub_peak_rss_mb = processMemoryMb(hub.child.pid, 'VmHWM') ?? 0;
  } catch (err) {
    log(`harness stopped: ${(err as Error).message}; the hub's log ends:\n${hub.stderr().slice(-4000)}`);
    throw err;
  } finally {
    await hub.stop();
    rmSync(work, { recursive: true, force: true });
  }
  result.cases = result.mqtt_cases + result.rest_cases;
  for (const f of failures) log(`FAIL ${f}`);
  const ok = result.crashed === 0 && result.lost === 0 && result.duplicated === 0 && result.unrefused === 0 && failures.length === 0;
  log(ok ? 'all bad input refused, nothing crashed, every honest detection stored once' : 'FAILED');
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz: ${(err as Error).stack ?? String(err)}\n`);
  process.stdout.write(`${JSON.stringify({ cases: 0, refused: 0, crashed: 1, lost: -1, error: (err as Error).message })}\n`);
  process.exitCode = 1;
});
