import { createHmac, timingSafeEqual } from 'node:crypto';
import * as path from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { loadOrCreateSecretFile } from '@shelfsight/common';
import { HUB_CONFIG } from '../config/hub-config';
import { formatDownloadToken, parseDownloadToken } from './download-token-format';

/** Where the hub keeps the download-token secret it generates when ROLLOUT_DOWNLOAD_TOKEN_SECRET is unset (mode 0600). */
export const DOWNLOAD_TOKEN_SECRET_FILE = 'download-token-secret';

/** How long a download token in an offer is good for (a device offline longer falls back to its credential). */
export const DOWNLOAD_TOKEN_TTL_MS = 60 * 60_000;

export type DownloadTokenCheck = { ok: true; deviceId: string } | { ok: false; reason: 'bad_token' | 'expired_token' };

/**
 * Short-lived bearer tokens for artifact downloads, put in each device's offer (which travels
 * on the device's own ACL-protected topic): `sdt_<deviceId>.<expiry, unix s>.<mac>`, the mac an
 * HMAC-SHA256 over device id, model version and expiry with a secret of its own
 * (ROLLOUT_DOWNLOAD_TOKEN_SECRET, else one generated in DATA_DIR), unrelated to any signing
 * key. Checking one is a hash, where the device password costs an scrypt.
 */
@Injectable()
export class DownloadTokens {
  private secretKey?: Buffer;

  constructor(@Inject(HUB_CONFIG) private readonly config: { rolloutDownloadTokenSecret?: string; dataDir: string }) {}

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
    this.secretKey ??= this.loadSecret();
    return createHmac('sha256', this.secretKey).update(`v1\n${deviceId}\n${modelVersion}\n${exp}`).digest();
  }

  private loadSecret(): Buffer {
    if (this.config.rolloutDownloadTokenSecret) return Buffer.from(this.config.rolloutDownloadTokenSecret, 'utf8');
    const file = path.join(this.config.dataDir, DOWNLOAD_TOKEN_SECRET_FILE);
    const { secret, created } = loadOrCreateSecretFile(file);
    if (created) new Logger('RolloutDownloads').log(`download tokens are MACed with a secret generated in ${file} (mode 0600); set ROLLOUT_DOWNLOAD_TOKEN_SECRET for replicas`);
    return secret;
  }
}
