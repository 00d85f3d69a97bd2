import { randomBytes } from 'node:crypto';
import { connectAsync, type MqttClient } from 'mqtt';
import { Client } from 'pg';
import { ModelOfferSchema, parsePayload } from '@shelfsight/contracts';
import { RolloutsService } from '@shelfsight/hub';
import { seedStandInVersion } from './support/flipped-head';
import { EXTERNAL_MQTT_URL, hasExternalMqtt, hasExternalPostgres } from './support/services';
import { readEvents } from './support/sse';
import { eventually, hubFetch, startTestHub, type TestHub } from './support/test-hub';

/**
 * Two hub replicas on one PostgreSQL and one broker (Mosquitto, MQTT 5 shared subscription),
 * as deploy/ runs them: what one handles, the other's clients hear about (LISTEN/NOTIFY), and
 * the guards that were per process hold across both.
 */
const d = hasExternalPostgres() && hasExternalMqtt() ? describe : describe.skip;
d('two hub replicas on one database', () => {
  jest.setTimeout(180_000);
  let a: TestHub;
  let b: TestHub;
  const run = randomBytes(3).toString('hex');

  beforeAll(async () => {
    const shared = { MQTT_SHARE_GROUP: `replicas-${run}`, ROLLOUT_TICK_MS: '200' };
    a = await startTestHub('postgres', 'mosquitto', shared);
    // Replica B: the same database (A's), its own DATA_DIR and ports.
    b = await startTestHub('postgres', 'mosquitto', { ...shared, DATABASE_URL: a.db.url });
  }, 180_000);

  afterAll(async () => {
    await b?.stop(); // drops B's own (unused) database; A's is the shared one
    await a?.stop();
  }, 120_000);

  const call = async (hub: TestHub, method: string, path: string, body?: unknown, apiKey?: string) => {
    const res = await hubFetch(`${hub.hub.httpUrl}${path}`, {
      method,
      ...(apiKey ? { apiKey } : {}),
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> };
  };

  it('an SSE client on replica A sees the events of actions taken on replica B, once each', async () => {
    const res = await hubFetch(`${a.hub.httpUrl}/events`, { headers: { Accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    const stream = readEvents(res);
    try {
      // A training job queued through B (no worker here: it stays queued), then cancelled through B.
      const job = await call(b, 'POST', '/training-jobs', { base: { dataset: `nonexistent-${run}` } });
      expect(job.status).toBe(201);
      const id = job.body.id as number;
      const queued = await stream.next((e) => e.event === 'training' && (e.data as { id: number }).id === id, 30_000);
      expect(queued.data).toMatchObject({ id, status: 'queued' });
      expect((await call(b, 'POST', `/training-jobs/${id}/cancel`)).status).toBeLessThan(300);
      await stream.next((e) => e.event === 'training' && (e.data as { id: number; status: string }).id === id && (e.data as { status: string }).status === 'cancelled', 30_000);

      // A rollout aborted through B: A's client is told to re-read it.
      const version = `v-sse-${run}`;
      await seedStandInVersion(b, version);
      const device = `dev-sse-${run}`;
      expect((await call(b, 'POST', `/devices/${device}/credentials`)).status).toBe(201);
      const rollout = await call(b, 'POST', '/rollouts', { modelVersion: version, target: { deviceIds: [device] }, stages: [{ percent: 100 }] });
      expect(rollout.status).toBe(201);
      expect((await call(b, 'POST', `/rollouts/${String(rollout.body.id)}/abort`)).status).toBe(200);
      await stream.next((e) => e.event === 'rollout' && (e.data as { id: string }).id === rollout.body.id, 30_000);

      // B's own client gets B's events once, not once more over the database; A's once too.
      const resB = await hubFetch(`${b.hub.httpUrl}/events`, { headers: { Accept: 'text/event-stream' } });
      const streamB = readEvents(resB);
      try {
        const second = await call(b, 'POST', '/rollouts', { modelVersion: version, target: { deviceIds: [device] }, stages: [{ percent: 100 }] });
        expect(second.status).toBe(201);
        expect((await call(b, 'POST', `/rollouts/${String(second.body.id)}/abort`)).status).toBe(200);
        const ofSecond = (e: { event: string; data: unknown }) => e.event === 'rollout' && (e.data as { id: string }).id === second.body.id;
        await streamB.next(ofSecond, 30_000);
        await stream.next(ofSecond, 30_000);
        // Past a coalescing window on each side and a NOTIFY round trip: still one each.
        await new Promise((r) => setTimeout(r, 3000));
        expect(streamB.events.filter(ofSecond)).toHaveLength(1);
        expect(stream.events.filter(ofSecond)).toHaveLength(1);
      } finally {
        await streamB.close();
      }
    } finally {
      await stream.close();
    }
  });

  it('a key revoked through one replica is refused by the other at once, not when its cache expires', async () => {
    const created = await call(a, 'POST', '/api-keys', { name: `replica key ${run}`, role: 'viewer' });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    const keyId = created.body.id as string;
    // B has looked the key up (and keeps it for 5 s).
    expect((await call(b, 'GET', '/auth/me', undefined, key)).status).toBe(200);

    // Hear the revocation go out, as B does.
    const listener = new Client({ connectionString: a.db.url });
    await listener.connect();
    const heard = new Promise<void>((resolve) =>
      listener.on('notification', (n) => {
        if (n.payload?.includes('api-key-revoked') && n.payload.includes(keyId)) resolve();
      }),
    );
    await listener.query('LISTEN shelfsight_cluster');
    try {
      const primedAt = Date.now();
      expect((await call(a, 'POST', `/api-keys/${keyId}/revoke`)).status).toBe(200);
      await heard;
      const refusedAt = await eventually(async () => ((await call(b, 'GET', '/auth/me', undefined, key)).status === 401 ? Date.now() : undefined), 10_000, 'B refusing the key');
      // B's cache entry would still have been trusted: only the message can have dropped it.
      expect(refusedAt - primedAt).toBeLessThan(5000);
    } finally {
      await listener.end();
    }
  });

  it('offers each device once when replica A creates a rollout while replica B delivers', async () => {
    const offers = new Map<string, string[]>();
    const ids = Array.from({ length: 30 }, (_, i) => `dev-race-${run}-${i}`);
    const observer: MqttClient = await connectAsync(EXTERNAL_MQTT_URL, { clientId: `observer-${run}` });
    observer.on('message', (topic, payload) => {
      const deviceId = topic.split('/')[3]!;
      if (!ids.includes(deviceId) || payload.length === 0) return;
      const parsed = parsePayload(ModelOfferSchema, payload);
      if (parsed.ok) offers.set(deviceId, [...(offers.get(deviceId) ?? []), parsed.value.offerId]);
    });
    await observer.subscribeAsync('shelfsight/v1/devices/+/model-offer', { qos: 1 });
    try {
      const version = `v-race-${run}`;
      await seedStandInVersion(a, version);
      for (const id of ids) expect((await call(a, 'POST', `/devices/${id}/credentials`)).status).toBe(201);
      // B runs delivery passes back to back (its tick and more) while A's POST delivers.
      const rolloutsB = b.hub.app.get(RolloutsService);
      let racing = true;
      const racer = (async () => {
        while (racing) {
          await Promise.all([rolloutsB.deliver(), rolloutsB.tick()]);
          await new Promise((r) => setImmediate(r));
        }
      })();
      const created = await call(a, 'POST', '/rollouts', { modelVersion: version, target: { deviceIds: ids }, stages: [{ percent: 100 }] });
      expect(created.status).toBe(201);
      await new Promise((r) => setTimeout(r, 1000));
      racing = false;
      await racer;
      await eventually(async () => (ids.every((id) => (offers.get(id) ?? []).length > 0) ? true : undefined), 30_000, 'every offer seen');
      await new Promise((r) => setTimeout(r, 500));
      expect(ids.map((id) => (offers.get(id) ?? []).filter((o) => o === created.body.id).length)).toEqual(ids.map(() => 1));
      expect((await call(a, 'POST', `/rollouts/${String(created.body.id)}/abort`)).status).toBe(200);
    } finally {
      await observer.endAsync();
    }
  });
});
