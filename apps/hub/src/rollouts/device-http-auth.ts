import { timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DEVICE_ID_PATTERN } from '@shelfsight/contracts';
import { sha256 } from '../common/sha256';
import { CredentialsService } from '../credentials/credentials.service';

/** How long a verified device password is trusted without running scrypt again (as the broker does). */
const VERIFIED_TTL_MS = 5 * 60_000;

export type DeviceAuthResult = { ok: true; deviceId: string } | { ok: false; reason: 'missing_credentials' | 'unknown_device' | 'bad_password' | 'disabled' };

/**
 * HTTP basic auth with a device's MQTT credential (username = device id, password from
 * `shelf device add`), checked against the same stored scrypt hash the broker checks; a
 * verified password is remembered briefly by its SHA-256 digest (until the credential changes).
 */
@Injectable()
export class DeviceHttpAuth {
  private readonly verified = new Map<string, { digest: Buffer; passwordHash: string; until: number }>();

  constructor(private readonly credentials: CredentialsService) {}

  async check(authorization: string | undefined): Promise<DeviceAuthResult> {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization ?? '');
    if (!m) return { ok: false, reason: 'missing_credentials' };
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return { ok: false, reason: 'missing_credentials' };
    const deviceId = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (!DEVICE_ID_PATTERN.test(deviceId)) return { ok: false, reason: 'unknown_device' };
    if (!password) return { ok: false, reason: 'missing_credentials' };
    const credential = await this.credentials.find(deviceId);
    if (!credential) return { ok: false, reason: 'unknown_device' };
    if (credential.disabled) {
      this.verified.delete(deviceId);
      return { ok: false, reason: 'disabled' };
    }
    const digest = sha256(password);
    const cached = this.verified.get(deviceId);
    const now = Date.now();
    if (cached && cached.until > now && cached.passwordHash === credential.passwordHash && timingSafeEqual(cached.digest, digest)) return { ok: true, deviceId };
    if (!(await this.credentials.verify(password, credential.passwordHash))) return { ok: false, reason: 'bad_password' };
    if (this.verified.size >= 100_000) this.verified.clear();
    this.verified.set(deviceId, { digest, passwordHash: credential.passwordHash, until: now + VERIFIED_TTL_MS });
    return { ok: true, deviceId };
  }
}
