import { randomBytes } from 'node:crypto';
import { SCHEMA_VERSION } from '@shelfsight/contracts';
import type { DatabaseKind } from './support/databases';
import { detection, FakeDevice } from './support/fake-device';
import { hasExternalPostgres } from './support/services';
import { readEvents } from './support/sse';
import { hubFetch, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`live events, GET /events (${variant.db})`, () => {
    let sut: TestHub;
    let device: FakeDevice;
    const site = `ev-${randomBytes(3).toString('hex')}`;

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes');
      device = await FakeDevice.connect(sut.hub.mqttUrl, `${site}-dev`);
    }, 120_000); // a hub on a fresh database, on a busy machine

    afterAll(async () => {
      await device?.close();
      await sut?.stop();
    });

    it('is authorised like the API: no key, no stream', async () => {
      const res = await hubFetch(`${sut.hub.httpUrl}/events`, { apiKey: null });
      expect(res.status).toBe(401);
    });

    it('pushes device presence (heartbeats coalesced per device), inventory changes per site and training job changes', async () => {
      const res = await hubFetch(`${sut.hub.httpUrl}/events`, { headers: { Accept: 'text/event-stream' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const stream = readEvents(res);
      try {
        const beat = (n: number) =>
          JSON.stringify({ v: SCHEMA_VERSION, deviceId: device.id, sentAt: new Date().toISOString(), uptimeS: n, framesPerS: 2.5, p95LatencyMs: 40 + n, queueDepth: 0, outboxDepth: n, outboxBytes: 0 });
        // Ten heartbeats in a burst: the stream carries a few (the newest per second), not ten events.
        for (let n = 1; n <= 10; n++) await device.sendRaw('heartbeat', beat(n));
        const ev = await stream.next((e) => e.event === 'device' && (e.data as { id: string }).id === device.id);
        expect(ev.data).toMatchObject({ id: device.id, online: true, lastHeartbeat: { framesPerS: 2.5 } });
        await new Promise((r) => setTimeout(r, 1500));
        const deviceEvents = stream.events.filter((e) => e.event === 'device');
        expect(deviceEvents.length).toBeLessThanOrEqual(3);

        await device.sendDetections([detection(1, { site, location: 'A-01-1-A', category: 'milk', confidence: 0.9, capturedAt: new Date().toISOString() })]);
        await device.waitForAcks([1]);
        const inv = await stream.next((e) => e.event === 'inventory' && (e.data as { site: string }).site === site);
        expect(inv.data).toMatchObject({ site });

        // Training jobs: queued (no worker runs here), then cancelled, each pushed as the job.
        const created = await hubFetch(`${sut.hub.httpUrl}/training-jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ base: { dataset: 'nonexistent' } }) });
        expect(created.status).toBe(201);
        const job = (await created.json()) as { id: number };
        await stream.next((e) => e.event === 'training' && (e.data as { id: number; status: string }).id === job.id);
        expect((await hubFetch(`${sut.hub.httpUrl}/training-jobs/${job.id}/cancel`, { method: 'POST' })).status).toBeLessThan(300);
        await stream.next((e) => e.event === 'training' && (e.data as { id: number; status: string }).id === job.id && (e.data as { status: string }).status === 'cancelled');
      } finally {
        await stream.close();
      }
    });
  });
}
