import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { MQTT_ACCESS_CONTROL, type DeviceCredentialStore, type MqttAccessControl, type StoredCredential } from '../broker/mqtt-access-control';
import { HubMetrics } from '../metrics/hub-metrics';
import { PrismaService } from '../prisma/prisma.service';
import type { CredentialStatusDto, IssuedCredentialDto } from './credential.dto';
import { CredentialNotFoundError } from './credentials.error';
import { generatePassword, hashPassword, verifyPassword } from './password-hash';

interface CredentialRow {
  device_id: string;
  disabled: boolean;
  created_at: Date;
  rotated_at: Date;
  disabled_at: Date | null;
}

/**
 * Per-device MQTT credentials: generated here (the password is returned once and only its
 * scrypt hash is stored), looked up and verified by the embedded broker, rotated and
 * disabled by operators. A rotation or a disable takes effect at once: the broker forgets
 * the cached verdict and disconnects the device, whose next connect is checked afresh.
 */
@Injectable()
export class CredentialsService implements DeviceCredentialStore, OnModuleInit {
  constructor(
    private readonly prisma: PrismaService,
    private readonly metrics: HubMetrics,
    @Inject(MQTT_ACCESS_CONTROL) private readonly access: MqttAccessControl | null,
  ) {}

  onModuleInit(): void {
    this.access?.attach(this, (action, reason) => this.metrics.mqttAuthRefused.inc({ action, reason }));
  }

  /** Create the device's credential, or rotate it (a new password; re-enables a disabled one). */
  async issue(deviceId: string): Promise<IssuedCredentialDto> {
    const password = generatePassword();
    const passwordHash = await hashPassword(password);
    const rows = await this.prisma.$queryRaw<CredentialRow[]>`
      INSERT INTO "device_credentials" ("device_id", "password_hash") VALUES (${deviceId}, ${passwordHash})
      ON CONFLICT ("device_id") DO UPDATE SET
        "password_hash" = EXCLUDED."password_hash", "rotated_at" = now(), "disabled" = false, "disabled_at" = NULL
      RETURNING "device_id", "disabled", "created_at", "rotated_at", "disabled_at"`;
    this.access?.revoke(deviceId);
    return { ...toDto(rows[0]!), username: deviceId, password };
  }

  async status(deviceId: string): Promise<CredentialStatusDto> {
    const rows = await this.prisma.$queryRaw<CredentialRow[]>`
      SELECT "device_id", "disabled", "created_at", "rotated_at", "disabled_at" FROM "device_credentials" WHERE "device_id" = ${deviceId}`;
    if (!rows[0]) throw new CredentialNotFoundError(deviceId);
    return toDto(rows[0]);
  }

  /** Disable the credential (kept, so the record says when); the device is disconnected and refused from now on. */
  async disable(deviceId: string): Promise<CredentialStatusDto> {
    const rows = await this.prisma.$queryRaw<CredentialRow[]>`
      UPDATE "device_credentials" SET "disabled" = true, "disabled_at" = COALESCE("disabled_at", now())
      WHERE "device_id" = ${deviceId}
      RETURNING "device_id", "disabled", "created_at", "rotated_at", "disabled_at"`;
    if (!rows[0]) throw new CredentialNotFoundError(deviceId);
    this.access?.revoke(deviceId);
    return toDto(rows[0]);
  }

  async find(deviceId: string): Promise<StoredCredential | undefined> {
    const row = await this.prisma.deviceCredential.findUnique({ where: { deviceId }, select: { passwordHash: true, disabled: true } });
    return row ?? undefined;
  }

  verify(password: string, passwordHash: string): Promise<boolean> {
    return verifyPassword(password, passwordHash);
  }
}

function toDto(row: CredentialRow): CredentialStatusDto {
  return {
    deviceId: row.device_id,
    enabled: !row.disabled,
    createdAt: row.created_at.toISOString(),
    rotatedAt: row.rotated_at.toISOString(),
    disabledAt: row.disabled_at?.toISOString() ?? null,
  };
}
