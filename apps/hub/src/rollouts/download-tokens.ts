import { createHmac, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { formatDownloadToken, parseDownloadToken } from './download-token-format';
import { SigningKeys } from './signing-keys';

/** How long a download token in an offer is good for (a device offline longer falls back to its credential). */
export const DOWNLOAD_TOKEN_TTL_MS = 60 * 60_000;

export type DownloadTokenCheck = { ok: true; deviceId: string } | { ok: false; reason: 'bad_token' | 'expired_token' };

/**
 * Short-lived bearer tokens for artifact downloads, put in each device's offer (which travels
 * on the device's own ACL-protected topic): `sdt_<deviceId>.<expiry, unix s>.<mac>`, the mac an
 * HMAC-SHA256 over device id, model version and expiry with a secret derived from the
 * rollout signing key. Checking one is a hash, where the device password costs an scrypt.
 */
@Injectable()
export class DownloadTokens {
  private secretKey?: Buffer;

  constructor(private readonly keys: SigningKeys) {}

  issue(deviceId: string, modelVersion: string, expiresAt: Date): string {
    const exp = Math.floor(expiresAt.getTime() / 1000);
    return formatDownloadToken(deviceId, exp, this.mac(deviceId, modelVersion, exp));
  }

  /** Whether `token` grants `modelVersion` at `now`, and to which device. */
  check(token: string, modelVersion: string, now: Date): DownloadTokenCheck {
    const t = parseDownloadToken(token);
    if (!t) return { ok: false, reason: 'bad_token' };
    const expected = this.mac(t.deviceId, modelVersion, t.expiresAtS);
    if (t.mac.length !== expected.length || !timingSafeEqual(t.mac, expected)) return { ok: false, reason: 'bad_token' };
    if (t.expiresAtS * 1000 <= now.getTime()) return { ok: false, reason: 'expired_token' };
    return { ok: true, deviceId: t.deviceId };
  }

  private mac(deviceId: string, modelVersion: string, exp: number): Buffer {
    this.secretKey ??= this.keys.derivedSecret('rollout-download-token/v1');
    return createHmac('sha256', this.secretKey).update(`v1\n${deviceId}\n${modelVersion}\n${exp}`).digest();
  }
}
