import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import type { RolloutManifest } from '@shelfsight/contracts';
import { writeFileAtomic } from '../storage/atomic-file';

const TrustFileSchema = z.object({
  v: z.literal(1),
  /** Newest release counter trusted, per {@link trustScope}. */
  counters: z.record(z.string(), z.number().int().positive()),
});

/** What a release counter counts within: the backbone (id and checksum) and the label list. */
export function trustScope(m: Pick<RolloutManifest, 'backbone' | 'labelsHash'>): string {
  return `${m.backbone.id}@${m.backbone.checksum}/${m.labelsHash}`;
}

export class TrustFileError extends Error {
  override name = 'TrustFileError';
}

/**
 * The newest release counter the device trusted per (backbone, label list), persisted in
 * `<state>/rollout/trusted.json` (atomic replace + fsync), so a replayed older manifest is
 * refused across restarts. A counter is recorded when its head is activated.
 */
export class TrustStore {
  private constructor(
    private readonly file: string,
    private readonly counters: Map<string, number>,
  ) {}

  static async open(stateDir: string): Promise<TrustStore> {
    const dir = path.join(stateDir, 'rollout');
    await fsp.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'trusted.json');
    let text: string | undefined;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return new TrustStore(file, new Map());
    let parsed: z.infer<typeof TrustFileSchema>;
    try {
      parsed = TrustFileSchema.parse(JSON.parse(text));
    } catch (err) {
      // Never start from zero silently: that would accept every replayed manifest.
      throw new TrustFileError(`${file} is unreadable (${(err as Error).message}); restore it or remove it deliberately to trust from scratch`);
    }
    return new TrustStore(file, new Map(Object.entries(parsed.counters)));
  }

  /** Newest counter trusted for the manifest's scope (0: none yet). */
  trusted(m: Pick<RolloutManifest, 'backbone' | 'labelsHash'>): number {
    return this.counters.get(trustScope(m)) ?? 0;
  }

  /** Trust the manifest's counter from now on (never lowers one); durable when it resolves. */
  async record(m: Pick<RolloutManifest, 'backbone' | 'labelsHash' | 'releaseCounter'>): Promise<void> {
    const scope = trustScope(m);
    if ((this.counters.get(scope) ?? 0) >= m.releaseCounter) return;
    const next = new Map(this.counters).set(scope, m.releaseCounter);
    await writeFileAtomic(this.file, JSON.stringify({ v: 1, counters: Object.fromEntries(next) }, null, 2) + '\n');
    this.counters.set(scope, m.releaseCounter);
  }
}
