import { Inject, Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, type ThrottlerStorage } from '@nestjs/throttler';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';

/** Addresses remembered as blocked at once (the throttler's storage holds the counts). */
const MAX_BLOCKED = 10_000;
const WINDOW_MS = 60_000;

/**
 * Failed authentications per client address, counted by the throttler's storage (the
 * same `@nestjs/throttler` storage as the per-key request limit, under its own name):
 * past AUTH_FAILURES_PER_MINUTE refused keys in a minute, the address is blocked for a
 * minute, and the access guard answers its keyed requests 429 without checking the key,
 * so keys cannot be guessed at request speed. The storage answers only when counting, so
 * the block it reports is remembered here until it ends.
 */
@Injectable()
export class AuthFailureThrottle {
  static readonly THROTTLER = 'auth-failures';
  private readonly blockedUntil = new Map<string, number>();
  /** Injected clock (tests move it). */
  now: () => number = Date.now;

  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  /** Seconds the address stays blocked, or 0 when it is not. */
  blockedFor(address: string): number {
    const until = this.blockedUntil.get(address);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.blockedUntil.delete(address);
    return 0;
  }

  /** Count one refused key from `address`. */
  async failed(address: string): Promise<void> {
    const r = await this.storage.increment(`auth-failures:${address}`, WINDOW_MS, this.config.authFailuresPerMinute, WINDOW_MS, AuthFailureThrottle.THROTTLER);
    if (!r.isBlocked) return;
    if (this.blockedUntil.size >= MAX_BLOCKED) {
      const oldest = this.blockedUntil.keys().next().value as string;
      this.blockedUntil.delete(oldest);
    }
    this.blockedUntil.delete(address);
    this.blockedUntil.set(address, this.now() + Math.max(1, r.timeToBlockExpire) * 1000);
  }
}
