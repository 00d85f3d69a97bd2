import * as tf from '@tensorflow/tfjs';
import { createLogger, type Logger } from '@shelfsight/common';

export type RuntimeBackend = 'tensorflow' | 'wasm' | 'cpu';
export interface RuntimeInfo {
  backend: RuntimeBackend;
}

let pending: Promise<RuntimeInfo> | undefined;

/**
 * Pick the fastest TensorFlow.js backend available, once per process (or worker):
 * native TensorFlow via `@tensorflow/tfjs-node` when installed, else WASM (one core per
 * process), else the pure-JS CPU backend. `SHELF_TF_BACKEND` forces one of them.
 */
export function initRuntime(logger: Logger = createLogger('vision')): Promise<RuntimeInfo> {
  pending ??= choose(logger).catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

async function choose(logger: Logger): Promise<RuntimeInfo> {
  const forced = process.env.SHELF_TF_BACKEND as RuntimeBackend | undefined;
  const order: RuntimeBackend[] = forced ? [forced] : ['tensorflow', 'wasm', 'cpu'];
  for (const backend of order) {
    if (await tryBackend(backend, logger)) {
      logger.info('tensorflow runtime ready', { backend });
      return { backend };
    }
  }
  throw new Error(`no TensorFlow.js backend available (tried ${order.join(', ')})`);
}

async function tryBackend(backend: RuntimeBackend, logger: Logger): Promise<boolean> {
  try {
    if (backend === 'tensorflow') {
      // Optional dependency: absent on most machines.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-node');
    } else if (backend === 'wasm') {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-backend-wasm');
    }
    return await tf.setBackend(backend);
  } catch (err) {
    logger.debug('tensorflow backend unavailable', { backend, err });
    return false;
  }
}

/** The backend currently in use, or undefined before {@link initRuntime}. */
export function currentBackend(): string | undefined {
  return pending ? tf.getBackend() : undefined;
}
