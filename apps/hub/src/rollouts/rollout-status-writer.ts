import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { RolloutStatus } from '@shelfsight/contracts';
import type { RolloutState } from './rollout.dto';
import { RolloutsRepository } from './rollouts.repository';

/** At most this many statuses in one statement. */
const MAX_BATCH = 1000;
/** A batch that deadlocks with another replica's is tried again this many times. */
const DEADLOCK_RETRIES = 3;

interface Pending {
  status: RolloutStatus;
  resolve(rolloutState: RolloutState | null): void;
  reject(err: Error): void;
}

/**
 * Writes devices' rollout statuses in batches: a rollout to a thousand devices brings five
 * thousand statuses within seconds, and one statement per status (two, with the device's
 * running version) kept the hub's event loop and PostgreSQL busy while downloads waited.
 * One batch is in flight at a time; what arrives meanwhile goes into the next, so a lone
 * status is written at once and a burst costs a statement per round trip. Callers learn the
 * outcome (the state of the rollout the status was recorded against, or null: the hub made no
 * such offer to this device) once their batch is committed.
 */
@Injectable()
export class RolloutStatusWriter implements OnModuleDestroy {
  private readonly log = new Logger('RolloutStatuses');
  private queue: Pending[] = [];
  private flushing?: Promise<void>;

  constructor(private readonly repo: RolloutsRepository) {}

  /** Resolves once the status is stored: the state of its rollout, or null when the hub made no such offer to the device. */
  record(status: RolloutStatus): Promise<RolloutState | null> {
    const done = new Promise<RolloutState | null>((resolve, reject) => this.queue.push({ status, resolve, reject }));
    this.schedule();
    return done;
  }

  private schedule(): void {
    if (this.flushing) return;
    // On the next turn of the event loop: statuses read from the same socket data go together.
    this.flushing = new Promise<void>((r) => setImmediate(r))
      .then(() => this.flush())
      .finally(() => {
        this.flushing = undefined;
        // A status recorded after the last batch was taken but before this point would wait for the next one.
        if (this.queue.length > 0) this.schedule();
      });
  }

  async onModuleDestroy(): Promise<void> {
    await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const known = await this.write(batch.map((p) => p.status));
        batch.forEach((p, i) => p.resolve(known[i]!));
      } catch (err) {
        this.log.warn(`${batch.length} rollout statuses not stored: ${(err as Error).message}`);
        for (const p of batch) p.reject(err as Error);
      }
    }
  }

  private async write(statuses: RolloutStatus[]): Promise<Array<RolloutState | null>> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.repo.recordStatuses(statuses);
      } catch (err) {
        if (attempt >= DEADLOCK_RETRIES || !/40P01|deadlock/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)) throw err;
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
      }
    }
  }
}
