import type { MqttAccessControl } from '../broker/mqtt-access-control';
import { HubMetrics } from '../metrics/hub-metrics';
import type { PrismaService } from '../prisma/prisma.service';
import { CredentialNotFoundError } from './credentials.error';
import { CredentialsService } from './credentials.service';

interface Row {
  device_id: string;
  password_hash: string;
  disabled: boolean;
  created_at: Date;
  rotated_at: Date;
  disabled_at: Date | null;
}

/**
 * The device_credentials table at the boundary the service uses: `$queryRaw` for the
 * upsert (INSERT … ON CONFLICT), the read (SELECT) and the disable (UPDATE), told apart by
 * their first keyword, and `deviceCredential.findUnique` for the broker's look-up.
 */
class FakeCredentialTable {
  readonly rows = new Map<string, Row>();
  clock = new Date('2026-12-01T00:00:00Z');

  $queryRaw = (sql: TemplateStringsArray, ...values: unknown[]): Promise<Row[]> => {
    const verb = sql[0]!.trim().split(/\s/)[0];
    const deviceId = values[0] as string;
    const row = this.rows.get(deviceId);
    if (verb === 'INSERT') {
      const next: Row = row
        ? { ...row, password_hash: values[1] as string, rotated_at: this.clock, disabled: false, disabled_at: null }
        : { device_id: deviceId, password_hash: values[1] as string, disabled: false, created_at: this.clock, rotated_at: this.clock, disabled_at: null };
      this.rows.set(deviceId, next);
      return Promise.resolve([next]);
    }
    if (verb === 'UPDATE') {
      if (!row) return Promise.resolve([]);
      row.disabled = true;
      row.disabled_at ??= this.clock;
      return Promise.resolve([row]);
    }
    return Promise.resolve(row ? [row] : []);
  };

  readonly deviceCredential = {
    findUnique: ({ where }: { where: { deviceId: string } }) => {
      const row = this.rows.get(where.deviceId);
      return Promise.resolve(row ? { passwordHash: row.password_hash, disabled: row.disabled } : null);
    },
  };
}

/** The broker's access control as the service drives it: attached once, told which devices to forget. */
class FakeAccess implements Pick<MqttAccessControl, 'attach' | 'revoke'> {
  readonly revoked: string[] = [];
  attached?: Parameters<MqttAccessControl['attach']>;

  attach(...args: Parameters<MqttAccessControl['attach']>): void {
    this.attached = args;
  }

  revoke(deviceId: string): void {
    this.revoked.push(deviceId);
  }
}

describe(CredentialsService.name, () => {
  let table: FakeCredentialTable;
  let access: FakeAccess;
  let metrics: HubMetrics;
  let sut: CredentialsService;

  beforeEach(() => {
    table = new FakeCredentialTable();
    access = new FakeAccess();
    metrics = new HubMetrics();
    sut = new CredentialsService(table as unknown as PrismaService, metrics, access as unknown as MqttAccessControl);
  });

  it('issues a password shown once and stores only a hash that verifies it', async () => {
    const issued = await sut.issue('cam-1');
    expect(issued).toMatchObject({ deviceId: 'cam-1', username: 'cam-1', enabled: true, disabledAt: null });
    const stored = await sut.find('cam-1');
    expect(stored!.passwordHash).not.toContain(issued.password);
    expect(await sut.verify(issued.password, stored!.passwordHash)).toBe(true);
    expect(await sut.verify(`${issued.password}x`, stored!.passwordHash)).toBe(false);
  });

  it('rotating gives a new password, re-enables a disabled credential and makes the broker forget the device each time', async () => {
    const first = await sut.issue('cam-1');
    await sut.disable('cam-1');
    table.clock = new Date('2026-12-02T00:00:00Z');
    const second = await sut.issue('cam-1');
    expect(second.password).not.toBe(first.password);
    expect(second).toMatchObject({ enabled: true, rotatedAt: '2026-12-02T00:00:00.000Z', createdAt: '2026-12-01T00:00:00.000Z' });
    expect(await sut.verify(first.password, (await sut.find('cam-1'))!.passwordHash)).toBe(false);
    expect(access.revoked).toEqual(['cam-1', 'cam-1', 'cam-1']);
  });

  it('disables a credential (kept, with when) and disconnects the device; the broker then finds it disabled', async () => {
    await sut.issue('cam-1');
    access.revoked.length = 0;
    expect(await sut.disable('cam-1')).toMatchObject({ enabled: false, disabledAt: '2026-12-01T00:00:00.000Z' });
    expect(access.revoked).toEqual(['cam-1']);
    expect(await sut.find('cam-1')).toMatchObject({ disabled: true });
    expect(await sut.status('cam-1')).toMatchObject({ enabled: false });
  });

  it('answers 404 for the status or disable of a device without a credential, and disconnects nobody', async () => {
    await expect(sut.status('ghost')).rejects.toThrow(CredentialNotFoundError);
    await expect(sut.disable('ghost')).rejects.toThrow(CredentialNotFoundError);
    expect(access.revoked).toEqual([]);
    expect(await sut.find('ghost')).toBeUndefined();
  });

  it('attaches itself to the broker as its credential store, and counts the refusals the broker reports', async () => {
    sut.onModuleInit();
    expect(access.attached![0]).toBe(sut);
    access.attached![1]('connect', 'bad_password');
    expect(await metrics.registry.metrics()).toMatch(/\{action="connect",reason="bad_password"\} 1/);
  });

  it('works without a broker of its own (an external broker): issuing and disabling need no access control', async () => {
    const alone = new CredentialsService(table as unknown as PrismaService, metrics, null);
    alone.onModuleInit();
    await alone.issue('cam-1');
    await expect(alone.disable('cam-1')).resolves.toMatchObject({ enabled: false });
  });
});
