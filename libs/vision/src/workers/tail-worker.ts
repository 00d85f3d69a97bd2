import { parentPort, workerData } from 'node:worker_threads';
import { silentLogger } from '@shelfsight/common';
import { initRuntime } from '../runtime';
import { pooledFeatures, stepGradients } from '../tail/tail-steps';
import type { TailWorkerData, TailWorkerReply, TailWorkerRequest } from './tail-protocol';

/** Computes tail + head gradients (and pooled features) on its share of each batch (see `TailStepPool`). */
async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('tail-worker must run in a worker thread');
  const data = workerData as TailWorkerData;
  try {
    await initRuntime(silentLogger);
    port.on('message', (m: TailWorkerRequest) => {
      try {
        if (m.type === 'step') {
          const out = stepGradients(data.set, data.spec, data.headSpec, m.input);
          port.postMessage({ type: 'step', id: m.id, out } satisfies TailWorkerReply, [out.gTail.buffer as ArrayBuffer, out.gHead.buffer as ArrayBuffer]);
        } else {
          const pooled = pooledFeatures(data.set, data.spec, m.tail, m.rows);
          port.postMessage({ type: 'pooled', id: m.id, pooled } satisfies TailWorkerReply, [pooled.buffer as ArrayBuffer]);
        }
      } catch (err) {
        port.postMessage({ type: 'failed', id: m.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) } satisfies TailWorkerReply);
      }
    });
    port.postMessage({ type: 'ready' } satisfies TailWorkerReply);
  } catch (err) {
    port.postMessage({ type: 'failed', error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) } satisfies TailWorkerReply);
  }
}

void main();
