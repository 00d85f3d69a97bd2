import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { BackboneInfo } from '../backbones/backbone';
import { BackboneError, ImageDecodeError } from '../errors';
import type { FeatureExtractor } from '../extractor';
import type { FeatureJob } from '../features';
import type { WorkerData, WorkerReply, WorkerRequest, WireJob } from './protocol';

/** Worker bootstrap: the TypeScript hook when running from sources, then the worker's entry module. */
export const WORKER_BOOT = `
const { workerData } = require('node:worker_threads');
if (workerData.register) require(workerData.register);
require(workerData.entry);
`;

/** The repository's TypeScript require hook, for workers running from sources. */
export function findRegister(): string | undefined {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    const p = join(dir, 'bin', 'register.js');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return undefined;
}

interface Slot {
  worker: Worker;
}

/**
 * Backbone inference spread over worker threads, each with its own TensorFlow.js
 * runtime (WASM runs one core per thread). Jobs go out in small chunks to whichever
 * worker is idle; results come back in job order.
 */
export class WorkerPoolExtractor implements FeatureExtractor {
  private constructor(
    readonly backbone: BackboneInfo,
    private readonly slots: Slot[],
    private readonly chunk: number,
    private readonly inFlight: number,
  ) {}

  static defaultSize(): number {
    const env = Number(process.env.SHELF_WORKERS);
    return Number.isInteger(env) && env > 0 ? env : Math.max(1, availableParallelism());
  }

  static async start(
    backboneSpec: string,
    opts: {
      workers?: number;
      offline?: boolean;
      batchSize?: number;
      /** Chunks queued per worker (default 2). */
      inFlight?: number;
      /** Run the backbone only up to this freeze point: the results are its flattened activations. */
      freezePoint?: string;
    } = {},
  ): Promise<WorkerPoolExtractor> {
    const n = opts.workers ?? WorkerPoolExtractor.defaultSize();
    const isTs = __filename.endsWith('.ts');
    const data: WorkerData = {
      backbone: backboneSpec,
      offline: !!opts.offline,
      batchSize: opts.batchSize ?? 8,
      ...(opts.freezePoint ? { freezePoint: opts.freezePoint } : {}),
      register: isTs ? findRegister() : undefined,
      entry: join(__dirname, `feature-worker${isTs ? '.ts' : '.js'}`),
    };
    const slots: Slot[] = [];
    const ready: Array<Promise<BackboneInfo>> = [];
    for (let i = 0; i < n; i++) {
      const worker = new Worker(WORKER_BOOT, { eval: true, workerData: data });
      slots.push({ worker });
      ready.push(
        new Promise<BackboneInfo>((resolve, reject) => {
          const onMsg = (m: WorkerReply) => {
            if (m.type === 'ready') resolve(m.backbone);
            else if (m.type === 'fatal') reject(new BackboneError(`worker ${i}: ${m.error}`));
            if (m.type === 'ready' || m.type === 'fatal') worker.off('message', onMsg);
          };
          worker.on('message', onMsg);
          worker.once('error', reject);
        }),
      );
    }
    try {
      const infos = await Promise.all(ready);
      return new WorkerPoolExtractor(infos[0] as BackboneInfo, slots, Math.max(1, opts.batchSize ?? 8), Math.max(1, opts.inFlight ?? 2));
    } catch (err) {
      await Promise.all(slots.map((s) => s.worker.terminate()));
      throw err;
    }
  }

  get size(): number {
    return this.slots.length;
  }

  async extract(jobs: FeatureJob[], onProgress?: (done: number) => void): Promise<Array<Float32Array | ImageDecodeError>> {
    const out: Array<Float32Array | ImageDecodeError> = new Array(jobs.length);
    let next = 0;
    let done = 0;
    let seq = 0;
    const runOn = (slot: Slot): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const pump = () => {
          if (next >= jobs.length) {
            resolve();
            return;
          }
          const start = next;
          const part = jobs.slice(start, start + this.chunk);
          next += part.length;
          const id = ++seq;
          const onMsg = (m: WorkerReply) => {
            if ((m.type !== 'result' && m.type !== 'failed') || m.id !== id) return;
            slot.worker.off('message', onMsg);
            slot.worker.off('error', onErr);
            slot.worker.off('exit', onExit);
            if (m.type === 'failed') {
              reject(new Error(`feature worker failed: ${m.error}`));
              return;
            }
            m.results.forEach((r, k) => {
              // Not `instanceof`: arrays from another realm (e.g. under a test runner's VM) fail it.
              out[start + k] =
                'error' in r && typeof r.error === 'string'
                  ? new ImageDecodeError(r.source, r.error.replace(/^cannot decode image .*?: /, ''))
                  : new Float32Array((r as Float32Array).buffer, (r as Float32Array).byteOffset, (r as Float32Array).length);
            });
            done += part.length;
            onProgress?.(done);
            pump();
          };
          const onErr = (err: Error) => {
            slot.worker.off('message', onMsg);
            slot.worker.off('exit', onExit);
            reject(err);
          };
          const onExit = (code: number) => onErr(new Error(`feature worker exited with code ${code}`));
          slot.worker.on('message', onMsg);
          slot.worker.once('error', onErr);
          slot.worker.once('exit', onExit);
          const wire: WireJob[] = part.map((j) => ({ input: j.input, source: j.source, draw: j.draw }));
          slot.worker.postMessage({ type: 'extract', id, jobs: wire } satisfies WorkerRequest);
        };
        pump();
      });
    // Two chunks in flight per worker: while the backbone runs on one, the worker's sharp
    // decodes the next (on libuv threads) and the message round trip is hidden; with one,
    // each worker idled during decode + round trip (the second worker's loss in `bench infer`).
    await Promise.all(this.slots.flatMap((s) => Array.from({ length: this.inFlight }, () => runOn(s))));
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.slots.map(async (s) => {
        s.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
        await s.worker.terminate();
      }),
    );
  }
}
