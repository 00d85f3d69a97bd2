import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../storage/atomic-file';

/** What became of an offer the device will not install again. */
export type RefusedState = 'rolled_back' | 'rejected';

const RefusedFileSchema = z.object({
  v: z.literal(1),
  offers: z.record(z.string(), z.object({ modelVersion: z.string(), state: z.enum(['rolled_back', 'rejected']) })),
});

/** Offers remembered at most (the oldest are forgotten first). */
const MAX_REMEMBERED = 1000;

export class RefusedOffersFileError extends Error {
  override name = 'RefusedOffersFileError';
}

/**
 * Offers this device rolled back or had cancelled, persisted in `<state>/rollout/refused.json`
 * (atomic replace + fsync), so the same offer (a retained one after a reconnect, a restart)
 * is refused with `rolled_back_before` instead of being installed again.
 */
export class RefusedOffers {
  private constructor(
    private readonly file: string,
    private readonly offers: Map<string, { modelVersion: string; state: RefusedState }>,
  ) {}

  static async open(stateDir: string): Promise<RefusedOffers> {
    const dir = path.join(stateDir, 'rollout');
    await fsp.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'refused.json');
    let text: string | undefined;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return new RefusedOffers(file, new Map());
    try {
      return new RefusedOffers(file, new Map(Object.entries(RefusedFileSchema.parse(JSON.parse(text)).offers)));
    } catch (err) {
      // Never forget silently: that would reinstall a head the operator rolled back.
      throw new RefusedOffersFileError(`${file} is unreadable (${(err as Error).message}); restore it or remove it deliberately`);
    }
  }

  get(offerId: string): { modelVersion: string; state: RefusedState } | undefined {
    return this.offers.get(offerId);
  }

  /** Remember an offer; durable when it resolves. */
  async add(offerId: string, modelVersion: string, state: RefusedState): Promise<void> {
    const next = new Map(this.offers);
    next.delete(offerId);
    next.set(offerId, { modelVersion, state });
    while (next.size > MAX_REMEMBERED) next.delete(next.keys().next().value as string);
    await writeFileAtomic(this.file, JSON.stringify({ v: 1, offers: Object.fromEntries(next) }, null, 2) + '\n');
    this.offers.clear();
    for (const [k, v] of next) this.offers.set(k, v);
  }
}
