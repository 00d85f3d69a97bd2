import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { z } from 'zod';
import { BirthSchema, DeathSchema, HeartbeatSchema, parsePayload } from '@shelfsight/contracts';
import type { Device, Prisma } from '@shelfsight/db';
import { EventBus } from '../events/event-bus';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import { PrismaService } from '../prisma/prisma.service';
import type { DeviceDto } from './device.dto';

/** Fleet membership and liveness from birth, death (last will) and heartbeat messages. */
@Injectable()
export class DevicesService implements OnModuleInit {
  private readonly log = new Logger(DevicesService.name);
  private onlineCount = 0;

  constructor(
    private readonly prisma: PrismaService,
    private readonly rejections: RejectionRecorder,
    private readonly metrics: HubMetrics,
    private readonly events: EventBus,
  ) {
    metrics.devicesOnline.readFrom(() => this.onlineCount);
  }

  async onModuleInit(): Promise<void> {
    await this.refreshOnlineCount();
  }

  async onBirth(topicDeviceId: string, payload: unknown): Promise<void> {
    const birth = this.validate('birth', BirthSchema, topicDeviceId, payload);
    if (!birth) return;
    const known = await this.prisma.device.findUnique({ where: { id: birth.deviceId }, select: { epoch: true } });
    const epochChanged = known?.epoch != null && known.epoch !== birth.epoch;
    if (epochChanged) {
      this.metrics.epochChanges.inc();
      this.log.warn(
        `device ${birth.deviceId} is back with a new sequence epoch (${known.epoch} -> ${birth.epoch}): its storage was reset, and detections it had not delivered are lost`,
      );
    }
    const data = {
      kind: birth.kind,
      site: birth.site,
      agentVersion: birth.agentVersion,
      backboneId: birth.backboneId,
      modelVersion: birth.modelVersion,
      online: true,
      lastSeenAt: new Date(),
      lastBirthAt: new Date(),
      epoch: birth.epoch,
      ...(epochChanged ? { epochChangedAt: new Date() } : {}),
    };
    this.published(await this.prisma.device.upsert({ where: { id: birth.deviceId }, create: { id: birth.deviceId, ...data }, update: data }));
    await this.refreshOnlineCount();
  }

  async onDeath(topicDeviceId: string, payload: unknown): Promise<void> {
    const death = this.validate('death', DeathSchema, topicDeviceId, payload);
    if (!death) return;
    const dead = await this.prisma.device.updateManyAndReturn({ where: { id: death.deviceId }, data: { online: false } });
    for (const d of dead) this.published(d);
    await this.refreshOnlineCount();
  }

  async onHeartbeat(topicDeviceId: string, payload: unknown): Promise<void> {
    const hb = this.validate('heartbeat', HeartbeatSchema, topicDeviceId, payload);
    if (!hb) return;
    const heartbeat = hb as unknown as Prisma.InputJsonValue;
    const data = { online: true, lastSeenAt: new Date(), lastHeartbeat: heartbeat };
    this.published(await this.prisma.device.upsert({ where: { id: hb.deviceId }, create: { id: hb.deviceId, ...data }, update: data }));
    await this.refreshOnlineCount();
  }

  /** Live fleet screens get the device's new row; heartbeats coalesce to one event per device per second. */
  private published(device: Device): void {
    this.events.publish('device', toDto(device), { coalesce: `device:${device.id}` });
  }

  async list(): Promise<DeviceDto[]> {
    const devices = await this.prisma.device.findMany({ orderBy: { id: 'asc' } });
    return devices.map(toDto);
  }

  private validate<S extends z.ZodType<{ deviceId: string }>>(
    channel: string,
    schema: S,
    topicDeviceId: string,
    payload: unknown,
  ): z.infer<S> | undefined {
    const parsed = parsePayload(schema, payload);
    if (!parsed.ok) {
      this.rejections.record(channel, parsed.reason, topicDeviceId, parsed.message);
      return undefined;
    }
    const value = parsed.value;
    if (value.deviceId !== topicDeviceId) {
      this.rejections.record(channel, 'device_mismatch', topicDeviceId, `payload names device ${value.deviceId}`);
      return undefined;
    }
    return value;
  }

  private async refreshOnlineCount(): Promise<void> {
    this.onlineCount = await this.prisma.device.count({ where: { online: true } });
  }
}

function toDto(d: Device): DeviceDto {
  return {
    id: d.id,
    kind: d.kind,
    site: d.site,
    online: d.online,
    lastSeenAt: d.lastSeenAt?.toISOString() ?? null,
    agentVersion: d.agentVersion,
    backboneId: d.backboneId,
    modelVersion: d.modelVersion,
    epoch: d.epoch,
    epochChangedAt: d.epochChangedAt?.toISOString() ?? null,
    lastHeartbeat: (d.lastHeartbeat as Record<string, unknown> | null) ?? null,
  };
}
