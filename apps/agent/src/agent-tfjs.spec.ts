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
    const source = path.join(path.dirname(demoModel), 'demo-frames');
    const frames = path.join(tmp, 'frames');
    await fsp.mkdir(frames);
    const names = (await fsp.readdir(source)).filter((n) => n.endsWith('.jpg')).sort().slice(0, 4);
    for (const n of names) {
      await fsp.copyFile(path.join(source, n), path.join(frames, n));
      await fsp.copyFile(path.join(source, n.replace(/\.jpg$/, '.json')), path.join(frames, n.replace(/\.jpg$/, '.json')));
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
      expect(got).toHaveLength(4);
      const manifest = JSON.parse(await fsp.readFile(path.join(demoModel, 'manifest.json'), 'utf8')) as { version: string };
      for (const d of got) {
        expect(['apples', 'bananas', 'juice', 'milk']).toContain(d.category);
        expect(d.topK).toHaveLength(2);
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
