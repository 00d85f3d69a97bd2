import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { RequestWithPrincipal } from '../auth/actor';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { auditRecordOf } from './audit-record';
import { AuditService } from './audit.service';
import type { RequestWithId } from './request-id';

/** Why a request was denied: an access-guard refusal (401/403) or a rate limit (429). */
export type DenialReason = 'missing' | 'unknown' | 'wrong' | 'expired' | 'revoked' | 'role' | 'rate' | 'auth_failures' | (string & {});

/** Address+reason pairs tracked at once; past it the oldest window is closed early (a flood of addresses costs rows, not memory). */
const MAX_WINDOWS = 10_000;

interface Window {
  openedAt: number;
  /** The entry written for the first request of the window (undefined if it could not be written). */
  id: Promise<bigint | undefined>;
  /** Requests after the first, to add to its count when the window closes. */
  more: number;
}

/**
 * Denied requests (401, 403, 429) in the audit log, coalesced so a flood cannot flood the
 * log: the first denial of an address and reason (and key, when the caller has a valid
 * one) is written at once, the ones after it within AUDIT_DENIED_INTERVAL_S only add to
 * that entry's count (written when the window closes). The counter metrics beside it stay
 * exact.
 */
@Injectable()
export class DeniedRequestAudit implements OnModuleDestroy {
  private readonly windows = new Map<string, Window>();
  private readonly intervalMs: number;
  private sweeper?: NodeJS.Timeout;
  /** Injected clock (tests move it). */
  now: () => number = Date.now;

  constructor(
    private readonly audit: AuditService,
    @Inject(HUB_CONFIG) config: HubConfig,
  ) {
    this.intervalMs = config.auditDeniedIntervalS * 1000;
  }

  /** Note a request answered `status` for `reason`. Never throws; the writes happen in the background. */
  note(req: RequestWithPrincipal & RequestWithId, status: 401 | 403 | 429, reason: DenialReason): void {
    const now = this.now();
    const address = req.ip ?? 'unknown';
    // Per address and reason; a refused role (403) also per key, so one key's attempts never hide another's.
    const key = `${address}\u0000${reason}\u0000${req.principal?.id ?? ''}`;
    const open = this.windows.get(key);
    if (open && now - open.openedAt < this.intervalMs) {
      open.more += 1;
      return;
    }
    if (open) this.close(key, open);
    if (this.windows.size >= MAX_WINDOWS) {
      const [oldestKey, oldest] = this.windows.entries().next().value as [string, Window];
      this.close(oldestKey, oldest);
    }
    const id = this.audit.record({ ...auditRecordOf(req, status, new Date(now)), address, reason, count: 1 });
    this.windows.set(key, { openedAt: now, id, more: 0 });
    if (!this.sweeper) {
      this.sweeper = setInterval(() => void this.flush(false), this.intervalMs);
      this.sweeper.unref();
    }
  }

  /** Close the windows whose interval has passed (all of them with `all`) and write their counts. */
  async flush(all = true): Promise<void> {
    const now = this.now();
    const writes: Array<Promise<void>> = [];
    for (const [key, w] of this.windows) if (all || now - w.openedAt >= this.intervalMs) writes.push(this.close(key, w));
    await Promise.all(writes);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.flush(true);
  }

  private close(key: string, w: Window): Promise<void> {
    this.windows.delete(key);
    if (w.more === 0) return Promise.resolve();
    return w.id.then((id) => (id === undefined ? undefined : this.audit.addCount(id, w.more)));
  }
}
