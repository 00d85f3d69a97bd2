import { parentPort, workerData } from 'node:worker_threads';
import { silentLogger } from '@shelfsight/common';
import { describeBackbone } from '../backbones/backbone';
import { loadBackbone } from '../backbones/resolve';
import { ImageDecodeError } from '../errors';
import { extractFeatures, type FeatureJob } from '../features';
import { initRuntime } from '../runtime';
import { frozenPart } from '../tail/frozen';
import type { WorkerData, WorkerReply, WorkerRequest } from './protocol';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('feature-worker must run in a worker thread');
  const data = workerData as WorkerData;
  try {
    await initRuntime(silentLogger);
    const full = await loadBackbone(data.backbone, { offline: data.offline, logger: silentLogger });
    const backbone = data.freezePoint ? frozenPart(full, data.freezePoint) : full;
    port.postMessage({ type: 'ready', backbone: describeBackbone(backbone) } satisfies WorkerReply);
    port.on('message', (msg: WorkerRequest) => {
      if (msg.type === 'close') {
        backbone.dispose();
        port.close();
        return;
      }
      const jobs: FeatureJob[] = msg.jobs.map((j) => ({
        ...j,
        input: typeof j.input === 'string' ? j.input : Buffer.from(j.input.buffer, j.input.byteOffset, j.input.byteLength),
      }));
      void extractFeatures(backbone, jobs, { batchSize: data.batchSize }).then(
        (results) => {
          const out = results.map((r) => (r instanceof ImageDecodeError ? { error: r.message, source: r.source } : r));
          const transfer = results.filter((r): r is Float32Array => r instanceof Float32Array).map((r) => r.buffer as ArrayBuffer);
          port.postMessage({ type: 'result', id: msg.id, results: out } satisfies WorkerReply, transfer);
        },
        (err: unknown) => port.postMessage({ type: 'failed', id: msg.id, error: String(err) } satisfies WorkerReply),
      );
    });
  } catch (err) {
    port.postMessage({ type: 'fatal', error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) } satisfies WorkerReply);
  }
}

void main();
