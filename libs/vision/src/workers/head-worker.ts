import { parentPort, workerData } from 'node:worker_threads';
import { silentLogger } from '@shelfsight/common';
import { trainHeads } from '../head/train';
import { initRuntime } from '../runtime';
import type { HeadWorkerData, HeadWorkerReply } from './head-protocol';

/** Trains a contiguous run of ensemble members (see `trainEnsemble`) in its own TensorFlow.js runtime. */
async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('head-worker must run in a worker thread');
  const data = workerData as HeadWorkerData;
  try {
    await initRuntime(silentLogger);
    const results = await trainHeads(data.train, data.val, data.opts, data.members, (rec, member, total) =>
      port.postMessage({ type: 'eval', rec, member, total } satisfies HeadWorkerReply),
    );
    const out = results.map(({ head, ...rest }) => {
      const weights = head.toWeights();
      head.dispose();
      return { ...rest, weights };
    });
    port.postMessage({ type: 'done', results: out } satisfies HeadWorkerReply, out.map((r) => r.weights.buffer as ArrayBuffer));
  } catch (err) {
    port.postMessage({ type: 'failed', error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) } satisfies HeadWorkerReply);
  }
}

void main();
