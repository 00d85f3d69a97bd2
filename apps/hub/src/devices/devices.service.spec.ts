import { Logger } from '@nestjs/common';
import { SCHEMA_VERSION } from '@shelfsight/contracts';
import type { Device } from '@shelfsight/db';
import { EventBus } from '../events/event-bus';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import type { PrismaService } from '../prisma/prisma.service';
import { DevicesService } from './devices.service';

type Data = Partial<Device>;

/** The devices table at the boundary the service uses (`prisma.device`): rows by id. */
class FakeDevices {
  readonly rows = new Map<string, Device>();
  writes = 0;

  private put(id: string, data: Data): Device {
    const row: Device = {
      id,
      kind: 'unknown',
      site: null,
      agentVersion: null,
      backboneId: null,
      modelVersion: null,
      online: false,
      lastSeenAt: null,
      lastBirthAt: null,
      lastHeartbeat: null,
      epoch: null,
      epochChangedAt: null,
      createdAt: new Date('2026-12-01T00:00:00Z'),
      ...this.rows.get(id),
      ...data,
    } as Device;
    this.rows.set(id, row);
    this.writes++;
    return row;
  }

  readonly device = {
    findUnique: ({ where }: { where: { id: string } }) => Promise.resolve(this.rows.get(where.id) ?? null),
    upsert: ({ where, update }: { where: { id: string }; create: Data; update: Data }) => Promise.resolve(this.put(where.id, update)),
    updateManyAndReturn: ({ where, data }: { where: { id: string }; data: Data }) =>
      Promise.resolve(this.rows.has(where.id) ? [this.put(where.id, data)] : []),
    count: ({ where }: { where: { online: boolean } }) => Promise.resolve([...this.rows.values()].filter((d) => d.online === where.online).length),
    findMany: () => Promise.resolve([...this.rows.values()].sort((a, b) => a.id.localeCompare(b.id))),
  };
}

const birth = (deviceId: string, epoch = 'e1') => ({
  v: SCHEMA_VERSION,
  deviceId,
  kind: 'camera',
  site: 's1',
  agentVersion: '1.0.0',
  backboneId: 'b1',
  modelVersion: 'm1',
  startedAt: '2026-12-01T10:00:00.000Z',
  epoch,
});
const death = (deviceId: string) => ({ v: SCHEMA_VERSION, deviceId, reason: 'lost' });
const heartbeat = (deviceId: string) => ({
  v: SCHEMA_VERSION,
  deviceId,
  sentAt: '2026-12-01T10:00:00.000Z',
  uptimeS: 5,
  framesPerS: 2,
  p95LatencyMs: 40,
  queueDepth: 0,
  outboxDepth: 3,
  outboxBytes: 900,
});

describe(DevicesService.name, () => {
  let db: FakeDevices;
  let metrics: HubMetrics;
  let published: Array<{ id: string; online: boolean }>;
  let sut: DevicesService;
  const metric = async (name: string) => new RegExp(`^${name} (\\d+)$`, 'm').exec(await metrics.registry.metrics())?.[1];

  beforeAll(() => jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined));
  beforeEach(() => {
    db = new FakeDevices();
    metrics = new HubMetrics();
    const events = new EventBus();
    published = [];
    jest.spyOn(events, 'publish').mockImplementation((_name, data) => void published.push(data as { id: string; online: boolean }));
    sut = new DevicesService(db as unknown as PrismaService, new RejectionRecorder(metrics), metrics, events);
  });

  it('marks a device online on its birth and offline on its death, keeping the online gauge and live screens current', async () => {
    await sut.onBirth('cam-1', birth('cam-1'));
    await sut.onBirth('cam-2', birth('cam-2'));
    expect(await metric('shelfsight_devices_online')).toBe('2');
    await sut.onDeath('cam-1', death('cam-1'));
    expect(await metric('shelfsight_devices_online')).toBe('1');
    expect(published.map((d) => [d.id, d.online])).toEqual([
      ['cam-1', true],
      ['cam-2', true],
      ['cam-1', false],
    ]);
    expect((await sut.list()).map((d) => [d.id, d.online, d.epoch])).toEqual([
      ['cam-1', false, 'e1'],
      ['cam-2', true, 'e1'],
    ]);
  });

  it('notes a new sequence epoch (storage reset) on a birth: counted and stamped, but not on a first birth or a restart with the same epoch', async () => {
    await sut.onBirth('cam-1', birth('cam-1', 'e1'));
    await sut.onBirth('cam-1', birth('cam-1', 'e1'));
    expect(db.rows.get('cam-1')!.epochChangedAt).toBeNull();
    expect(await metric('shelfsight_device_epoch_changes_total')).toBe('0');
    await sut.onBirth('cam-1', birth('cam-1', 'e2'));
    expect(db.rows.get('cam-1')).toMatchObject({ epoch: 'e2', epochChangedAt: expect.any(Date) });
    expect(await metric('shelfsight_device_epoch_changes_total')).toBe('1');
  });

  it('records a heartbeat (a device first heard by its heartbeat is created online)', async () => {
    await sut.onHeartbeat('cam-3', heartbeat('cam-3'));
    const [dto] = await sut.list();
    expect(dto).toMatchObject({ id: 'cam-3', online: true, lastHeartbeat: expect.objectContaining({ outboxDepth: 3 }) });
  });

  it('refuses malformed payloads and payloads that name another device than their topic, writing nothing', async () => {
    await sut.onBirth('cam-1', birth('cam-2'));
    await sut.onBirth('cam-1', { v: SCHEMA_VERSION, deviceId: 'cam-1' });
    await sut.onHeartbeat('cam-1', heartbeat('cam-2'));
    await sut.onDeath('cam-1', 'not json');
    expect(db.writes).toBe(0);
    expect(published).toEqual([]);
    expect(await metrics.registry.metrics()).toMatch(/\{channel="birth",reason="device_mismatch"\} 1/);
  });

  it('ignores the death of a device it never saw', async () => {
    await sut.onDeath('ghost', death('ghost'));
    expect(db.rows.size).toBe(0);
    expect(published).toEqual([]);
  });
});
