import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { startAgent } from './agent';
import { agentConfig } from './config';
import { FakeHub } from './testing/fake-hub';
import { TestBroker } from './testing/test-broker';

const demoModel = process.env.SHELFSIGHT_TEST_DEMO_MODEL;

/** The real classifier path: `--classifier tfjs --model <dir>`, on the generated demo model and frames. */
describe('startAgent with the TensorFlow.js classifier', () => {
  it('classifies real frames with the configured model and reports its versions in the birth', async () => {
    if (!demoModel) throw new Error('SHELFSIGHT_TEST_DEMO_MODEL is set by the jest global setup');
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-tfjs-'));
    const broker = await TestBroker.start();
    const hub = await FakeHub.start(broker.url);
    // Two held-out photos of each demo category (the model scored 100% on them when it was
    // trained), one location each, so every detection can be checked against its photo's label.
    const heldOut = path.join(path.dirname(demoModel), 'demo-heldout');
    const frames = path.join(tmp, 'frames');
    await fsp.mkdir(frames);
    const expected = new Map<string, string>();
    for (const [ci, category] of ['apples', 'bananas', 'juice', 'milk'].entries()) {
      const photos = (await fsp.readdir(path.join(heldOut, category))).filter((n) => n.endsWith('.jpg')).sort().slice(0, 2);
      expect(photos).toHaveLength(2);
      for (const [pi, photo] of photos.entries()) {
        const location = `A-0${ci + 1}-1-${'AB'[pi]}`;
        const name = `${category}-${pi}`;
        expected.set(location, category);
        await fsp.copyFile(path.join(heldOut, category, photo), path.join(frames, `${name}.jpg`));
        await fsp.writeFile(path.join(frames, `${name}.json`), JSON.stringify({ location, capturedAt: new Date().toISOString() }));
      }
    }
    const sut = await startAgent(
      agentConfig({
        deviceId: 'tf-1',
        site: 'site-1',
        mqttUrl: broker.url,
        framesDir: frames,
        stateDir: path.join(tmp, 'state'),
        classifier: 'tfjs',
        modelDir: demoModel,
        topK: 2,
        pollMs: 50,
        settleMs: 0,
      }),
      { logger: silentLogger },
    );
    try {
      await sut.idle(60_000);
      const got = hub.framesOf('tf-1');
      expect(got).toHaveLength(8);
      const manifest = JSON.parse(await fsp.readFile(path.join(demoModel, 'manifest.json'), 'utf8')) as { version: string };
      // The right label for each photo (a constant or shuffled classifier fails this).
      expect(Object.fromEntries(got.map((d) => [d.location, d.category]))).toEqual(Object.fromEntries(expected));
      for (const d of got) {
        expect(d.topK).toHaveLength(2);
        expect(d.topK[0]!.category).toBe(d.category);
        expect(d.modelVersion).toBe(manifest.version);
      }
      expect(hub.births[0]).toMatchObject({ deviceId: 'tf-1', modelVersion: manifest.version });
      expect(hub.births[0]?.backboneId).not.toBe('stand-in');
    } finally {
      await sut.stop();
      await hub.stop();
      await broker.stop();
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
});
