import { Logger } from '@nestjs/common';
import type { AedesOptions, AuthenticateError, Client, PublishPacket } from 'aedes';
import { deviceTopic, TOPIC_ROOT } from '@shelfsight/contracts';
import { hashPassword, verifyPassword } from '../credentials/password-hash';
import { MqttAccessControl, type DeviceCredentialStore, type StoredCredential } from './mqtt-access-control';

/** A credential store on a map, counting how often scrypt runs. */
class MemoryStore implements DeviceCredentialStore {
  readonly credentials = new Map<string, StoredCredential>();
  verifications = 0;
  async find(deviceId: string): Promise<StoredCredential | undefined> {
    return this.credentials.get(deviceId);
  }
  async verify(password: string, passwordHash: string): Promise<boolean> {
    this.verifications += 1;
    return verifyPassword(password, passwordHash);
  }
}

/** How long a verified password is trusted (README "Device credentials": five minutes). */
const VERIFIED_TTL_MS = 5 * 60_000;

const fakeClient = (id: string) => ({ id, closed: false, close: jest.fn() }) as unknown as Client & { close: jest.Mock };

describe(MqttAccessControl.name, () => {
  let sut: MqttAccessControl;
  let store: MemoryStore;
  let hooks: Required<Pick<AedesOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'>>;
  let now: number;
  const refusals: string[] = [];

  const authenticate = (client: Client, username: string | undefined, password: string | undefined) =>
    new Promise<{ ok: boolean; code?: number }>((resolve) =>
      hooks.authenticate(client, username, password === undefined ? undefined : Buffer.from(password), (err, ok) =>
        resolve({ ok: !err && ok === true, code: (err as AuthenticateError | null)?.returnCode }),
      ),
    );
  const subscribe = (client: Client, topic: string) =>
    new Promise<boolean>((resolve) => hooks.authorizeSubscribe(client, { topic, qos: 1 }, (err, sub) => resolve(!err && !!sub)));
  const publish = (client: Client, topic: string) =>
    new Promise<Error | null | undefined>((resolve) => hooks.authorizePublish(client, { topic, payload: Buffer.alloc(0), qos: 1 } as PublishPacket, resolve));

  beforeAll(async () => {
    Logger.overrideLogger(false);
    store = new MemoryStore();
    store.credentials.set('dev-1', { passwordHash: await hashPassword('right'), disabled: false });
    store.credentials.set('dev-off', { passwordHash: await hashPassword('right'), disabled: true });
  });

  beforeEach(() => {
    now = 1_000_000;
    store.verifications = 0;
    refusals.length = 0;
    sut = new MqttAccessControl(() => now);
    hooks = sut.hooks() as typeof hooks;
  });

  it('refuses devices as "server unavailable" until the store is attached, and counts those refusals once it is', async () => {
    expect(await authenticate(fakeClient('dev-1'), 'dev-1', 'right')).toEqual({ ok: false, code: 3 });
    sut.attach(store, (action, reason) => refusals.push(`${action}:${reason}`));
    expect(refusals).toEqual(['connect:not_ready']);
  });

  it('runs scrypt once for a reconnect storm of one device, again after the cache expires', async () => {
    sut.attach(store, () => undefined);
    const verifiedAt = now;
    for (let i = 0; i < 50; i++) expect((await authenticate(fakeClient('dev-1'), 'dev-1', 'right')).ok).toBe(true);
    expect(store.verifications).toBe(1);
    // Just before the 5-minute lifetime ends the verdict still holds...
    now = verifiedAt + VERIFIED_TTL_MS - 1;
    expect((await authenticate(fakeClient('dev-1'), 'dev-1', 'right')).ok).toBe(true);
    expect(store.verifications).toBe(1);
    // ...and just after it, scrypt runs again.
    now = verifiedAt + VERIFIED_TTL_MS + 1;
    expect((await authenticate(fakeClient('dev-1'), 'dev-1', 'right')).ok).toBe(true);
    expect(store.verifications).toBe(2);
  });

  it('does not let a cached verdict admit a different password, and refuses a repeated wrong one without scrypt', async () => {
    sut.attach(store, (action, reason) => refusals.push(`${action}:${reason}`));
    expect((await authenticate(fakeClient('dev-1'), 'dev-1', 'right')).ok).toBe(true);
    expect(await authenticate(fakeClient('dev-1'), 'dev-1', 'wrong')).toEqual({ ok: false, code: 4 });
    expect(await authenticate(fakeClient('dev-1'), 'dev-1', 'wrong')).toEqual({ ok: false, code: 4 });
    expect(store.verifications).toBe(2);
    expect(await authenticate(fakeClient('dev-off'), 'dev-off', 'right')).toEqual({ ok: false, code: 5 });
    expect(await authenticate(fakeClient('shelfsight-hub-1-abc'), 'shelfsight-hub-1-abc', 'right')).toEqual({ ok: false, code: 5 });
    expect(refusals).toEqual(['connect:bad_password', 'connect:bad_password', 'connect:disabled', 'connect:reserved_id']);
  });

  it('revoke forgets the cached verdict and disconnects the device', async () => {
    sut.attach(store, () => undefined);
    const client = fakeClient('dev-1');
    expect((await authenticate(client, 'dev-1', 'right')).ok).toBe(true);
    sut.revoke('dev-1');
    expect(client.close).toHaveBeenCalledTimes(1);
    expect((await authenticate(fakeClient('dev-1'), 'dev-1', 'right')).ok).toBe(true);
    expect(store.verifications).toBe(2);
  });

  it('lets a device publish only its own device-to-hub channels, and the hub everything', async () => {
    sut.attach(store, (action, reason) => refusals.push(`${action}:${reason}`));
    const device = fakeClient('dev-1');
    await authenticate(device, 'dev-1', 'right');
    expect(await publish(device, deviceTopic('dev-1', 'detections'))).toBeNull();
    expect(await publish(device, deviceTopic('dev-2', 'detections'))).toBeInstanceOf(Error);
    expect(await publish(device, deviceTopic('dev-1', 'ack'))).toBeInstanceOf(Error);
    expect(await publish(device, 'elsewhere/topic')).toBeInstanceOf(Error);
    expect(await publish(fakeClient('never-authenticated'), deviceTopic('dev-1', 'birth'))).toBeInstanceOf(Error);
    expect(refusals).toEqual(['publish:foreign_device', 'publish:channel', 'publish:topic', 'publish:unauthenticated']);

    const hub = fakeClient('shelfsight-hub-1');
    expect((await authenticate(hub, MqttAccessControl.HUB_USERNAME, 'guess')).ok).toBe(false);
    expect((await authenticate(hub, MqttAccessControl.HUB_USERNAME, sut.hubSecret)).ok).toBe(true);
    expect(await publish(hub, deviceTopic('dev-2', 'ack'))).toBeNull();
  });

  it('lets a device subscribe to its own hub-to-device channels and the hub\u2019s broadcasts, nothing else', async () => {
    sut.attach(store, () => undefined);
    const device = fakeClient('dev-1');
    await authenticate(device, 'dev-1', 'right');
    expect(await subscribe(device, deviceTopic('dev-1', 'ack'))).toBe(true);
    expect(await subscribe(device, deviceTopic('dev-1', 'frame-request'))).toBe(true);
    expect(await subscribe(device, deviceTopic('dev-1', 'model-offer'))).toBe(true);
    expect(await subscribe(device, deviceTopic('dev-2', 'model-offer'))).toBe(false);
    expect(await subscribe(device, deviceTopic('dev-1', 'rollout-status'))).toBe(false);
    expect(await publish(device, deviceTopic('dev-1', 'rollout-status'))).toBeNull();
    expect(await publish(device, deviceTopic('dev-1', 'model-offer'))).toBeInstanceOf(Error);
    expect(await subscribe(device, `${TOPIC_ROOT}/hub/status`)).toBe(true);
    expect(await subscribe(device, `${TOPIC_ROOT}/hub/#`)).toBe(false);
    expect(await subscribe(device, deviceTopic('dev-2', 'ack'))).toBe(false);
    expect(await subscribe(device, deviceTopic('dev-1', 'detections'))).toBe(false);
    expect(await subscribe(device, '#')).toBe(false);
    expect(await publish(device, `${TOPIC_ROOT}/hub/status`)).toBeInstanceOf(Error);
  });
});
