import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { acceptKeyList, verifyKeyList, type KeyListCheck, type RolloutManifest, type TrustedKeys, type VerifiedKeyList } from '@shelfsight/contracts';
import { writeFileAtomic } from '../storage/atomic-file';

const TrustFileV1Schema = z.object({ v: z.literal(1), counters: z.record(z.string(), z.number().int().positive()) });
const TrustFileSchema = z.object({
  v: z.literal(2),
  /** Newest release counter activated, per {@link lineScope}. */
  counters: z.record(z.string(), z.number().int().positive()),
  /** The root-signed release key list held (verified again at every start). */
  keyList: z.unknown().optional(),
  /** Nonces of model commands accepted, with their expiry (ms): each is taken once. */
  nonces: z.record(z.string(), z.number().int()).default({}),
});
type TrustFile = z.infer<typeof TrustFileSchema>;

/** What a release counter counts within: the backbone (id and checksum) and the model line, whatever the label list. */
export function lineScope(m: Pick<RolloutManifest, 'backbone' | 'modelLine'>): string {
  return `${m.backbone.id}@${m.backbone.checksum}/${m.modelLine}`;
}

export class TrustFileError extends Error {
  override name = 'TrustFileError';
}

/** Nonces remembered at most (commands expire within minutes; the oldest are forgotten first). */
const MAX_NONCES = 10_000;

/**
 * What this device trusts, persisted in `<state>/rollout/trusted.json` (atomic replace +
 * fsync) so it holds across restarts:
 * - the newest release counter it activated per (backbone, model line): a replayed older
 *   manifest, for whatever label list, is refused;
 * - the release key list its pinned roots signed, newest version (a revocation is never undone
 *   by replaying an older list, nor forgotten by a restart);
 * - the nonces of the model commands it took, until they expire (a command is taken once).
 * A v1 file (counters per backbone and label list) is carried over: each backbone's line
 * starts at the highest counter it held.
 */
export class TrustStore {
  private held: VerifiedKeyList | undefined;
  private saving: Promise<void> = Promise.resolve();
  private readonly taking = new Set<string>();

  private constructor(
    private readonly file: string,
    private state: TrustFile,
    private readonly roots: TrustedKeys,
  ) {}

  static async open(stateDir: string, roots: TrustedKeys, modelLine: string): Promise<TrustStore> {
    const dir = path.join(stateDir, 'rollout');
    await fsp.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'trusted.json');
    let text: string | undefined;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return new TrustStore(file, { v: 2, counters: {}, nonces: {} }, roots);
    let state: TrustFile;
    try {
      const raw: unknown = JSON.parse(text);
      const v1 = TrustFileV1Schema.safeParse(raw);
      state = v1.success ? { v: 2, counters: migrateV1(v1.data.counters, modelLine), nonces: {} } : TrustFileSchema.parse(raw);
    } catch (err) {
      // Never start from zero silently: that would accept every replayed manifest.
      throw new TrustFileError(`${file} is unreadable (${(err as Error).message}); restore it or remove it deliberately to trust from scratch`);
    }
    const store = new TrustStore(file, state, roots);
    if (state.keyList !== undefined) {
      // Expiry is checked when keys are used; the root and signature must still hold (a root removed from the device's settings drops its list).
      const v = verifyKeyList(state.keyList, roots);
      if (v.ok) store.held = v;
    }
    return store;
  }

  /** Newest counter activated for the manifest's line (0: none yet). */
  trusted(m: Pick<RolloutManifest, 'backbone' | 'modelLine'>): number {
    return this.state.counters[lineScope(m)] ?? 0;
  }

  /** Trust the manifest's counter from now on (never lowers one); durable when it resolves. */
  async record(m: Pick<RolloutManifest, 'backbone' | 'modelLine' | 'releaseCounter'>): Promise<void> {
    const scope = lineScope(m);
    if ((this.state.counters[scope] ?? 0) >= m.releaseCounter) return;
    await this.save((s) => ({ ...s, counters: { ...s.counters, [scope]: Math.max(s.counters[scope] ?? 0, m.releaseCounter) } }));
  }

  /** The release key list held (verified), if any. */
  get keyList(): VerifiedKeyList | undefined {
    return this.held;
  }

  /**
   * Take a key list when a pinned root signed it with a higher version than the one held
   * (durable when it resolves); otherwise the refusal, and nothing changes.
   */
  async offerKeyList(raw: unknown, now: Date): Promise<KeyListCheck> {
    const v = acceptKeyList(raw, this.held?.list, this.roots, now);
    if (!v.ok) return v;
    // Held at once (an offer checked meanwhile sees the new keys), durable when this resolves.
    this.held = v;
    await this.save((s) => ({ ...s, keyList: v.signed }));
    return v;
  }

  /** Take a command nonce once: false when it was taken before (a replay). Expired nonces are forgotten. */
  async takeNonce(nonce: string, expiresAt: string, now: Date): Promise<boolean> {
    if (this.state.nonces[nonce] !== undefined || this.taking.has(nonce)) return false;
    this.taking.add(nonce);
    try {
      await this.save((s) => {
        const kept = Object.entries(s.nonces).filter(([, exp]) => exp > now.getTime());
        kept.push([nonce, Date.parse(expiresAt)]);
        return { ...s, nonces: Object.fromEntries(kept.slice(-MAX_NONCES)) };
      });
    } finally {
      this.taking.delete(nonce);
    }
    return true;
  }

  /** Apply `update` to the state and write it; one write at a time, each from the state the previous one left. */
  private save(update: (s: TrustFile) => TrustFile): Promise<void> {
    const next = this.saving.then(async () => {
      const state = update(this.state);
      await writeFileAtomic(this.file, JSON.stringify(state, null, 2) + '\n');
      this.state = state;
    });
    this.saving = next.catch(() => undefined);
    return next;
  }
}

/** v1 counters were per `<backbone id>@<checksum>/<labels hash>`: each backbone's line starts at the highest of them. */
function migrateV1(counters: Record<string, number>, modelLine: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [scope, n] of Object.entries(counters)) {
    const backbone = scope.slice(0, scope.lastIndexOf('/'));
    const line = `${backbone}/${modelLine}`;
    out[line] = Math.max(out[line] ?? 0, n);
  }
  return out;
}
