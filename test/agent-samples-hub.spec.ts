import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { renderShelfPhoto, type DemoCategory } from '@shelfsight/vision';
import { agentConfig, frameIdOf, StandInClassifier, startAgent } from '@shelfsight/agent';
import type { DatabaseKind } from './support/databases';
import { registerTestBackbone } from './support/samples';
import { hasExternalPostgres } from './support/services';
import { eventually, getJson, startTestHub, type TestHub } from './support/test-hub';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

interface SampleJson {
  id: string;
  deviceId: string;
  reason: string;
  frameId: string;
  state: string;
  label: string | null;
  embeddingDim: number | null;
  backboneId: string;
  thumbnail: { url: string; sha256: string };
}

for (const variant of variants) {
  const d = variant.available() ? describe : describe.skip;
  d(`a real agent against the real hub: samples and frame requests (${variant.db})`, () => {
    jest.setTimeout(120_000);
    let sut: TestHub;
    let tmp: string;

    beforeAll(async () => {
      sut = await startTestHub(variant.db, 'aedes');
      // The stand-in classifier's backbone: 16-d features.
      await registerTestBackbone(sut.hub.databaseUrl, 'stand-in', 16);
      tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-hub-samples-'));
    });
    afterAll(async () => {
      await sut?.stop();
      if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
    });

    it('stores the agent\u2019s unsure frames with thumbnail and embedding, and a correction\u2019s frame request is answered by the agent', async () => {
      const site = `agent-${randomBytes(3).toString('hex')}`;
      const deviceId = `agent-s-${randomBytes(3).toString('hex')}`;
      const frames = path.join(tmp, 'frames');
      await fsp.mkdir(frames);
      const categories: DemoCategory[] = ['milk', 'juice', 'apples', 'bananas', 'milk', 'juice'];
      const ids: string[] = [];
      for (let n = 0; n < categories.length; n++) {
        const jpg = await renderShelfPhoto(categories[n]!, 500 + n);
        const name = `A-01-${n + 1}-A_${n}.jpg`;
        await fsp.writeFile(path.join(frames, name), jpg);
        ids.push(frameIdOf(name, jpg));
      }
      const config = agentConfig({
        deviceId,
        site,
        mqttUrl: sut.hub.mqttUrl,
        framesDir: frames,
        stateDir: path.join(tmp, 'state'),
        pollMs: 50,
        settleMs: 150,
        // Every frame is "unsure"; room for all six; only the newest three stay on the device.
        sampleMinConfidence: 1,
        samplesPerMinute: 10,
        frameBufferFrames: 3,
      });
      const agent = await startAgent(config, { classifier: new StandInClassifier(), logger: silentLogger });
      try {
        await agent.idle(30_000);
        const samples = await eventually(async () => {
          const items = (await getJson<{ items: SampleJson[] }>(`${sut.hub.httpUrl}/samples?site=${site}&order=newest`)).body.items;
          return items.length === 6 ? items : undefined;
        }, 30_000, 'six samples from the agent');
        expect(samples.every((s) => s.deviceId === deviceId && s.reason === 'low_confidence' && s.embeddingDim === 16 && s.backboneId === 'stand-in')).toBe(true);
        expect(new Set(samples.map((s) => s.frameId))).toEqual(new Set(ids));
        const thumb = await fetch(`${sut.hub.httpUrl}${samples[0]!.thumbnail.url}`);
        expect(thumb.status).toBe(200);
        expect(thumb.headers.get('content-type')).toBe('image/jpeg');
        expect(Buffer.from(await thumb.arrayBuffer()).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));

        // Correct the newest frame's detection (still held) and the oldest one's (no longer held).
        expect((await fetch(`${sut.hub.httpUrl}/categories`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bread' }) })).status).toBe(201);
        const dets = (await getJson<{ items: Array<{ id: string; frameId: string }> }>(`${sut.hub.httpUrl}/detections?site=${site}&limit=100`)).body.items;
        const detOf = (frameId: string) => dets.find((x) => x.frameId === frameId)!.id;
        const correct = (frameId: string) =>
          fetch(`${sut.hub.httpUrl}/detections/${detOf(frameId)}/correction`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ category: 'bread' }) });
        expect((await correct(ids[5]!)).status).toBe(201);
        expect((await correct(ids[0]!)).status).toBe(201);
        type Corr = { frameStatus: string; sampleId: string | null };
        const status = (frameId: string) =>
          eventually(async () => {
            const c = (await getJson<Corr[]>(`${sut.hub.httpUrl}/detections/${detOf(frameId)}/correction`)).body[0];
            return c && c.frameStatus !== 'requested' ? c : undefined;
          }, 30_000, `frame reply for ${frameId}`);
        const held = await status(ids[5]!);
        expect(held.frameStatus).toBe('received');
        const labelled = (await getJson<SampleJson>(`${sut.hub.httpUrl}/samples/${held.sampleId}`)).body;
        expect(labelled).toMatchObject({ reason: 'requested', state: 'labelled', label: 'bread', frameId: ids[5], embeddingDim: 16 });
        expect((await status(ids[0]!)).frameStatus).toBe('not_held');
        expect(agent.stats().samples.requested).toBe(1);
      } finally {
        await agent.stop();
      }
    });
  });
}
