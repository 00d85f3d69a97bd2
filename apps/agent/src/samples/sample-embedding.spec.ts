import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { decodeBottleneck } from '@shelfsight/contracts';
import { initRuntime, loadClassifier, type TfjsFrameClassifier } from '@shelfsight/vision';
import { startAgent } from '../agent';
import { agentConfig } from '../config';
import { FakeHub, waitUntil } from '../testing/fake-hub';
import { TestBroker } from '../testing/test-broker';

const demoModel = process.env.SHELFSIGHT_TEST_DEMO_MODEL;

/** The TensorFlow.js classifier with its backbone's passes counted. */
async function countingClassifier(model: string): Promise<{ classifier: TfjsFrameClassifier; passes: () => number }> {
  await initRuntime(silentLogger);
  const classifier = await loadClassifier({ model, topK: 2, logger: silentLogger });
  const backbone = classifier.backbone;
  const extract = backbone.extract.bind(backbone);
  let passes = 0;
  backbone.extract = (batch) => {
    passes += batch.shape[0];
    return extract(batch);
  };
  return { classifier, passes: () => passes };
}

describe('samples carry the classification’s embedding', () => {
  it('runs the backbone once per view of a sampled frame, and the sample’s bottleneck is that embedding', async () => {
    if (!demoModel) throw new Error('SHELFSIGHT_TEST_DEMO_MODEL is set by the jest global setup');
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-embed-'));
    const broker = await TestBroker.start();
    const hub = await FakeHub.start(broker.url);
    const source = path.join(path.dirname(demoModel), 'demo-frames');
    const frames = path.join(tmp, 'frames');
    await fsp.mkdir(frames);
    const names = (await fsp.readdir(source)).filter((n) => n.endsWith('.jpg')).sort().slice(0, 3);
    for (const n of names) {
      await fsp.copyFile(path.join(source, n), path.join(frames, n));
      await fsp.copyFile(path.join(source, n.replace(/\.jpg$/, '.json')), path.join(frames, n.replace(/\.jpg$/, '.json')));
    }
    const { classifier, passes } = await countingClassifier(demoModel);
    const sut = await startAgent(
      agentConfig({
        deviceId: `embed-${process.pid}`,
        site: 'site-1',
        mqttUrl: broker.url,
        framesDir: frames,
        stateDir: path.join(tmp, 'state'),
        // Every frame is sampled.
        sampleAuditRate: 1,
        samplesPerMinute: 100,
        pollMs: 50,
        settleMs: 0,
      }),
      { classifier, logger: silentLogger },
    );
    try {
      await sut.idle(60_000);
      await waitUntil(() => hub.samples.length === names.length, 20_000, 'a sample per frame', () => sut.stats().samples);
      expect(passes()).toBe(names.length * classifier.views.length);
      for (const s of hub.samples) {
        const v = decodeBottleneck(s.bottleneck ?? { dim: 0, encoding: 'f32le-base64', data: '' });
        expect(v).toHaveLength(classifier.backbone.featureDim);
        // The head step alone on the embedding gives the frame's prediction back (as a shadow head would score it).
        if (classifier.views.length === 1) expect(classifier.classifyFeatures(v).topK[0]?.category).toBe(s.prediction.category);
      }
    } finally {
      await sut.stop();
      classifier.dispose();
      await hub.stop();
      await broker.stop();
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
});
