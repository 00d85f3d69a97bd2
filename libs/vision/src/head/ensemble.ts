import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { HeadWorkerData, HeadWorkerReply, WireHeadResult } from '../workers/head-protocol';
import { findRegister, WORKER_BOOT, WorkerPoolExtractor } from '../workers/worker-pool';
import { TrainingCancelledError } from '../errors';
import { Head, type HeadSpec } from './head';
import { trainHeads, type EvalRecord, type FeatureSet, type TrainHeadOptions, type TrainHeadResult } from './train';

export interface TrainEnsembleOptions {
  /** Worker threads (default: all cores, at most one per member; 1 trains in this thread). */
  workers?: number;
  /** Called after every evaluation of a member (`member` counts from 0). */
  onEval?: (rec: EvalRecord, member: number, total: number) => void;
  /** Cooperative cancel, checked after every evaluation: training stops with TrainingCancelledError. */
  signal?: AbortSignal;
}

/**
 * `members` heads from seeds `opts.seed`, `opts.seed + 1`, …: the members are split into
 * contiguous runs, one per worker thread (WASM uses one core per thread), and each run
 * is trained as one batched model (`trainHeads`). Members are independent of each other,
 * so the result is the same for any number of workers.
 */
export async function trainEnsemble(
  train: FeatureSet,
  val: FeatureSet | undefined,
  opts: TrainHeadOptions,
  members: number,
  eopts: TrainEnsembleOptions = {},
): Promise<TrainHeadResult[]> {
  const workers = Math.max(1, Math.min(eopts.workers ?? WorkerPoolExtractor.defaultSize(), members));
  const { signal } = eopts;
  if (workers === 1) {
    return trainHeads(train, val, opts, members, (rec, member, total) => {
      eopts.onEval?.(rec, member, total);
      if (signal?.aborted) throw new TrainingCancelledError();
    });
  }
  const isTs = __filename.endsWith('.ts');
  const entry = join(__dirname, '..', 'workers', `head-worker${isTs ? '.ts' : '.js'}`);
  const register = isTs ? findRegister() : undefined;
  const runs: Array<{ first: number; count: number }> = [];
  for (let w = 0, first = 0; w < workers; w++) {
    const count = Math.floor(members / workers) + (w < members % workers ? 1 : 0);
    runs.push({ first, count });
    first += count;
  }
  const spec: HeadSpec = { ...opts.head, inputDim: train.dim, numClasses: opts.numClasses };
  const threads: Worker[] = [];
  try {
    const parts = await Promise.all(
      runs.map(
        (run) =>
          new Promise<WireHeadResult[]>((resolve, reject) => {
            const data: HeadWorkerData = { register, entry, train, val, opts: { ...opts, seed: opts.seed + run.first }, members: run.count };
            const worker = new Worker(WORKER_BOOT, { eval: true, workerData: data });
            threads.push(worker);
            worker.on('message', (m: HeadWorkerReply) => {
              if (m.type === 'eval') eopts.onEval?.(m.rec, run.first + m.member, m.total);
              else if (m.type === 'done') resolve(m.results);
              else reject(new Error(`head training worker failed: ${m.error}`));
            });
            worker.once('error', reject);
            // Abort: reject at once; the finally below terminates every thread.
            if (signal?.aborted) reject(new TrainingCancelledError());
            signal?.addEventListener('abort', () => reject(new TrainingCancelledError()), { once: true });
            worker.once('exit', (code) => reject(new Error(`head training worker exited with code ${code}`)));
          }),
      ),
    );
    return parts.flat().map(({ weights, ...rest }) => ({
      ...rest,
      // Not `instanceof`: arrays from another realm (e.g. under a test runner's VM) fail it.
      head: Head.fromWeights(spec, new Float32Array(weights.buffer, weights.byteOffset, weights.length)),
    }));
  } finally {
    await Promise.all(threads.map((t) => t.terminate()));
  }
}
