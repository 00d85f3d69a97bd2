import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { HeadSpec } from '../head/head';
import { findRegister, WORKER_BOOT } from '../workers/worker-pool';
import type { TailWorkerData, TailWorkerReply, TailWorkerRequest } from '../workers/tail-protocol';
import type { ActivationSet } from './activation-set';
import type { TailSpec } from './tail-math';
import { pooledFeatures, stepGradients, type StepInput, type StepOutput } from './tail-steps';

/**
 * Tail training's compute, split over worker threads (WASM runs one core per thread):
 * each batch's rows are cut into one contiguous part per worker, every worker computes
 * the summed gradients of its part, and the parts are added here. With one worker the
 * work runs in this thread. The activations are shared, not copied.
 */
export class TailStepPool {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (m: TailWorkerReply) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly set: ActivationSet,
    private readonly spec: TailSpec,
    private readonly headSpec: HeadSpec,
    private readonly workers: Worker[],
  ) {
    for (const w of workers) {
      w.on('message', (m: TailWorkerReply) => {
        if (m.type === 'ready' || m.id === undefined) return;
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.type === 'failed') p.reject(new Error(`tail training worker failed: ${m.error}`));
        else p.resolve(m);
      });
      const fail = (err: Error) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      };
      w.on('error', fail);
      w.on('exit', (code) => fail(new Error(`tail training worker exited with code ${code}`)));
    }
  }

  static async start(set: ActivationSet, spec: TailSpec, headSpec: HeadSpec, workers: number): Promise<TailStepPool> {
    if (workers <= 1) return new TailStepPool(set, spec, headSpec, []);
    const isTs = __filename.endsWith('.ts');
    const data: TailWorkerData = {
      register: isTs ? findRegister() : undefined,
      entry: join(__dirname, '..', 'workers', `tail-worker${isTs ? '.ts' : '.js'}`),
      set,
      spec,
      headSpec,
    };
    const threads: Worker[] = [];
    try {
      await Promise.all(
        Array.from({ length: workers }, () => {
          const w = new Worker(WORKER_BOOT, { eval: true, workerData: data });
          threads.push(w);
          return new Promise<void>((resolve, reject) => {
            const onMsg = (m: TailWorkerReply) => {
              w.off('message', onMsg);
              if (m.type === 'ready') resolve();
              else reject(new Error(`tail training worker: ${m.type === 'failed' ? m.error : m.type}`));
            };
            w.on('message', onMsg);
            w.once('error', reject);
          });
        }),
      );
    } catch (err) {
      await Promise.all(threads.map((t) => t.terminate()));
      throw err;
    }
    return new TailStepPool(set, spec, headSpec, threads);
  }

  get size(): number {
    return Math.max(1, this.workers.length);
  }

  private ask(w: Worker, req: TailWorkerRequest): Promise<TailWorkerReply> {
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      w.postMessage(req);
    });
  }

  /** Contiguous parts of `n` items, one per worker. */
  private parts(n: number): Array<[number, number]> {
    const k = Math.min(this.workers.length, n);
    return Array.from({ length: k }, (_, i) => [Math.floor((i * n) / k), Math.floor(((i + 1) * n) / k)] as [number, number]);
  }

  /** Summed gradients of tail + head over `input.rows`. */
  async step(input: StepInput): Promise<StepOutput> {
    if (this.workers.length === 0) return stepGradients(this.set, this.spec, this.headSpec, input);
    const hidden = input.mask ? input.mask.length / input.rows.length : 0;
    const outs = await Promise.all(
      this.parts(input.rows.length).map(async ([a, b], i) => {
        const part: StepInput = { ...input, rows: input.rows.slice(a, b), mask: input.mask?.slice(a * hidden, b * hidden) };
        const m = await this.ask(this.workers[i] as Worker, { type: 'step', id: ++this.seq, input: part });
        if (m.type !== 'step') throw new Error(`unexpected reply ${m.type}`);
        return m.out;
      }),
    );
    const first = outs[0] as StepOutput;
    const sum: StepOutput = { gTail: new Float32Array(first.gTail.length), gHead: new Float32Array(first.gHead.length), lossSum: 0, count: 0 };
    for (const o of outs) {
      // Not `instanceof`-dependent: arrays from a worker are plain typed arrays here.
      const gt = new Float32Array(o.gTail.buffer, o.gTail.byteOffset, o.gTail.length);
      const gh = new Float32Array(o.gHead.buffer, o.gHead.byteOffset, o.gHead.length);
      for (let i = 0; i < gt.length; i++) sum.gTail[i] = (sum.gTail[i] as number) + (gt[i] as number);
      for (let i = 0; i < gh.length; i++) sum.gHead[i] = (sum.gHead[i] as number) + (gh[i] as number);
      sum.lossSum += o.lossSum;
      sum.count += o.count;
    }
    return sum;
  }

  /** Pooled features of `rows` through `tail`, rows × C. */
  async pooled(tail: Float32Array, rows: Int32Array): Promise<Float32Array> {
    if (this.workers.length === 0) return pooledFeatures(this.set, this.spec, tail, rows);
    const c = this.spec.channels;
    const out = new Float32Array(rows.length * c);
    await Promise.all(
      this.parts(rows.length).map(async ([a, b], i) => {
        const m = await this.ask(this.workers[i] as Worker, { type: 'pooled', id: ++this.seq, tail, rows: rows.slice(a, b) });
        if (m.type !== 'pooled') throw new Error(`unexpected reply ${m.type}`);
        out.set(new Float32Array(m.pooled.buffer, m.pooled.byteOffset, m.pooled.length), a * c);
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
