import { withTimeout } from '@shelfsight/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { Client } from 'pg';
import { startSimulatedFleet } from '@shelfsight/agent';
import { spawnShelf } from '@shelfsight/cli';
import { silentLogger } from '@shelfsight/common';
import { AckSchema, deviceTopic, parsePayload, parseTrustedKeys, SCHEMA_VERSION } from '@shelfsight/contracts';
import { detection } from './support/fake-device';
import { eventually, hubFetch, startTestHub, type TestHub } from './support/test-hub';

interface IssuedCredential {
  deviceId: string;
  username: string;
  password: string;
  enabled: boolean;
}

/** MQTT 3.1.1 CONNACK codes. */
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

describe('device authentication on the embedded broker (MQTT_AUTH=on)', () => {
  const apiKey = randomBytes(16).toString('hex');
  const tag = randomBytes(3).toString('hex');
  let sut: TestHub;
  let sql: Client;
  const open: MqttClient[] = [];

  /** `key` null sends no X-API-Key header. */
  const api = (method: string, path: string, key: string | null = apiKey) =>
    fetch(`${sut.hub.httpUrl}${path}`, { method, headers: key === null ? {} : { 'X-API-Key': key } });
  const provision = async (deviceId: string): Promise<IssuedCredential> => {
    const res = await api('POST', `/devices/${deviceId}/credentials`);
    expect(res.status).toBe(201);
    return (await res.json()) as IssuedCredential;
  };
  const connect = async (opts: IClientOptions): Promise<MqttClient> => {
    const client = await connectAsync(sut.hub.mqttUrl, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    open.push(client);
    return client;
  };
  const connectDevice = (deviceId: string, password: string) => connect({ clientId: deviceId, username: deviceId, password });
  /** The CONNACK code a refused connect got. */
  const refusal = async (opts: IClientOptions): Promise<number> => {
    const err = await connect(opts).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: number },
    );
    if (!err) throw new Error(`connect as ${opts.clientId} was accepted`);
    return err.code ?? -1;
  };
  const metric = async (line: string): Promise<number> => {
    const text = await (await hubFetch(`${sut.hub.httpUrl}/metrics`, { apiKey })).text();
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    return found ? Number(found.split(' ').pop()) : 0;
  };
  const closed = (client: MqttClient) => new Promise<void>((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
  const batch = (deviceId: string, seqs: number[]) =>
    JSON.stringify({ v: SCHEMA_VERSION, deviceId, epoch: 'epoch-1', sentAt: new Date().toISOString(), detections: seqs.map((s) => detection(s, { site: `site-${tag}` })) });

  beforeAll(async () => {
    sut = await startTestHub('pglite', 'aedes', { MQTT_AUTH: 'on', HUB_API_KEY: apiKey });
    sql = new Client({ connectionString: sut.hub.databaseUrl });
    await sql.connect();
  });

  afterAll(async () => {
    for (const c of open) await c.endAsync(true).catch(() => undefined);
    await withTimeout(sql?.end() ?? Promise.resolve(), 5000);
    await sut?.stop();
  });

  it('provisions a credential only with the right API key, shows the password once and stores only a salted scrypt hash', async () => {
    const id = `prov-${tag}`;
    const missing = await api('POST', `/devices/${id}/credentials`, null);
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { message: string }).message).toMatch(/missing API key.*X-API-Key/);
    const wrong = await api('POST', `/devices/${id}/credentials`, `${apiKey}x`);
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { message: string }).message).toMatch(/wrong API key/);
    expect((await api('GET', `/devices/${id}/credentials`, 'not-the-key')).status).toBe(401);
    expect(await metric('shelfsight_api_key_refused_total{reason="missing"}')).toBe(1);
    expect(await metric('shelfsight_api_key_refused_total{reason="wrong"}')).toBe(2);
    expect((await api('GET', `/devices/${id}/credentials`)).status).toBe(404);

    const issued = await provision(id);
    expect(issued).toMatchObject({ deviceId: id, username: id, enabled: true });
    expect(issued.password).toMatch(/^[A-Za-z0-9_-]{32}$/);

    const status = (await (await api('GET', `/devices/${id}/credentials`)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ deviceId: id, enabled: true, disabledAt: null });
    expect(status).not.toHaveProperty('password');

    const row = (await sql.query('SELECT password_hash FROM device_credentials WHERE device_id = $1', [id])).rows[0] as { password_hash: string };
    expect(row.password_hash).toMatch(/^scrypt\$16384\$8\$1\$[^$]+\$[^$]+$/);
    expect(row.password_hash).not.toContain(issued.password);

    const badId = await api('POST', '/devices/bad%2Fid/credentials');
    expect(badId.status).toBe(400);
    const reserved = await api('POST', '/devices/shelfsight-hub-1-abc/credentials');
    expect(reserved.status).toBe(400);
    expect(JSON.stringify(await reserved.json())).toContain('belong to hub processes');
  });

  it('refuses wrong passwords, unknown devices, missing credentials and a client id other than the username', async () => {
    const id = `dev-${tag}`;
    const { password } = await provision(id);
    expect(await refusal({ clientId: id, username: id, password: `${password}x` })).toBe(BAD_USERNAME_OR_PASSWORD);
    expect(await refusal({ clientId: `ghost-${tag}`, username: `ghost-${tag}`, password })).toBe(BAD_USERNAME_OR_PASSWORD);
    expect(await refusal({ clientId: id })).toBe(BAD_USERNAME_OR_PASSWORD);
    expect(await refusal({ clientId: `other-${tag}`, username: id, password })).toBe(NOT_AUTHORIZED);
    expect(await refusal({ clientId: 'hub-impostor', username: '$hub', password })).toBe(BAD_USERNAME_OR_PASSWORD);

    const device = await connectDevice(id, password);
    expect(device.connected).toBe(true);
    expect(await metric('shelfsight_mqtt_auth_refused_total{action="connect",reason="bad_password"}')).toBe(2);
    expect(await metric('shelfsight_mqtt_auth_refused_total{action="connect",reason="unknown_device"}')).toBe(1);
    expect(await metric('shelfsight_mqtt_auth_refused_total{action="connect",reason="missing_credentials"}')).toBe(1);
    expect(await metric('shelfsight_mqtt_auth_refused_total{action="connect",reason="client_id_mismatch"}')).toBe(1);
  });

  it('disconnects a device that publishes in another device\u2019s name; the other device stays connected and is still acknowledged', async () => {
    const [a, b] = [`robot-a-${tag}`, `robot-b-${tag}`];
    const clientA = await connectDevice(a, (await provision(a)).password);
    const clientB = await connectDevice(b, (await provision(b)).password);
    const ackedB: number[] = [];
    clientB.on('message', (_topic, payload) => {
      const ack = parsePayload(AckSchema, payload);
      if (ack.ok) ackedB.push(...ack.value.seqs);
    });
    expect((await clientB.subscribeAsync(deviceTopic(b, 'ack'), { qos: 1 }))[0]?.qos).toBe(1);
    let bClosed = false;
    clientB.on('close', () => (bClosed = true));

    const aGone = closed(clientA);
    clientA.publish(deviceTopic(b, 'detections'), batch(b, [900, 901]), { qos: 1 });
    await aGone;
    expect(clientA.connected).toBe(false);
    expect(await metric('shelfsight_mqtt_auth_refused_total{action="publish",reason="foreign_device"}')).toBe(1);

    expect(bClosed).toBe(false);
    expect(clientB.connected).toBe(true);
    await clientB.publishAsync(deviceTopic(b, 'detections'), batch(b, [1, 2]), { qos: 1 });
    await eventually(async () => (ackedB.includes(1) && ackedB.includes(2) ? true : undefined), 15000, 'acks of B');
    expect(ackedB).not.toContain(900);
    const stored = await sql.query<{ seq: string }>('SELECT seq FROM detections WHERE device_id = $1 ORDER BY seq', [b]);
    expect(stored.rows.map((r) => Number(r.seq))).toEqual([1, 2]);
    expect(bClosed).toBe(false);
  });

  it('refuses subscriptions to another device\u2019s topics and to wildcards; the device stays connected', async () => {
    const [a, b] = [`cam-a-${tag}`, `cam-b-${tag}`];
    await provision(b);
    const clientA = await connectDevice(a, (await provision(a)).password);
    // mqtt.js rejects a SUBACK holding a refusal (0x80); the packet carries the per-filter verdicts.
    const suback = await clientA
      .subscribeAsync([deviceTopic(b, 'ack'), 'shelfsight/v1/devices/+/ack', deviceTopic(a, 'ack'), deviceTopic(a, 'frame-request')], { qos: 1 })
      .then(
        () => undefined,
        (e: unknown) => (e as { packet?: { granted?: number[] } }).packet,
      );
    expect(suback?.granted).toEqual([128, 128, 1, 1]);
    expect(clientA.connected).toBe(true);
    expect(await metric('shelfsight_mqtt_auth_refused_total{action="subscribe",reason="foreign_device"}')).toBe(1);
    expect(await metric('shelfsight_mqtt_auth_refused_total{action="subscribe",reason="topic"}')).toBe(1);
  });

  it('disables a credential: the device is disconnected and refused at its next connect; a new credential admits it again', async () => {
    const id = `drone-${tag}`;
    const { password } = await provision(id);
    const client = await connectDevice(id, password);
    expect((await api('DELETE', `/devices/${id}/credentials`, 'wrong-key-wrong-key')).status).toBe(401);
    const gone = closed(client);
    const res = await api('DELETE', `/devices/${id}/credentials`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ deviceId: id, enabled: false });
    await gone;

    expect(await refusal({ clientId: id, username: id, password })).toBe(NOT_AUTHORIZED);
    expect(await metric('shelfsight_mqtt_auth_refused_total{action="connect",reason="disabled"}')).toBe(1);

    const rotated = await provision(id);
    expect(rotated.password).not.toBe(password);
    expect(await refusal({ clientId: id, username: id, password })).toBe(BAD_USERNAME_OR_PASSWORD);
    expect((await connectDevice(id, rotated.password)).connected).toBe(true);
    expect((await api('DELETE', '/devices/never-provisioned/credentials')).status).toBe(404);
  });

  it('`shelf device add` provisions a device into a 0600 settings file; a thief with its id cannot knock it offline; `shelf device revoke` disconnects it at once', async () => {
    const id = `cart-${tag}`;
    const dir = mkdtempSync(join(tmpdir(), 'shelfsight-device-'));
    const file = join(dir, 'cart.env');
    try {
      const shelf = async (...args: string[]) => {
        const p = spawnShelf(['device', ...args, '--hub-url', sut.hub.httpUrl], { HUB_API_KEY: apiKey });
        return { code: await p.exited, out: p.stdout(), err: p.stderr() };
      };
      const keysFile = join(dir, 'trusted-keys');
      const added = await shelf('add', id, '--out', file, '--mqtt-url', sut.hub.mqttUrl, '--trusted-keys-out', keysFile);
      expect(added.code).toBe(0);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const env = Object.fromEntries(readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('=') && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      expect(env).toMatchObject({ DEVICE_ID: id, MQTT_USERNAME: id, MQTT_URL: sut.hub.mqttUrl, AGENT_TRUSTED_KEYS: keysFile });
      // Provisioning hands the device the hub's rollout signing key, in the file the agent reads.
      const keys = parseTrustedKeys(readFileSync(keysFile, 'utf8'));
      expect(keys.size).toBe(1);
      expect(readFileSync(keysFile, 'utf8')).toBe(await (await hubFetch(`${sut.hub.httpUrl}/rollouts/trusted-keys`, { apiKey })).text());
      const device = await connectDevice(id, env.MQTT_PASSWORD!);

      // The same client id without the password is refused, and the real device stays connected.
      expect(await refusal({ clientId: id, username: id, password: 'stolen-id-wrong-password' })).toBe(BAD_USERNAME_OR_PASSWORD);
      expect(await refusal({ clientId: id })).toBe(BAD_USERNAME_OR_PASSWORD);
      await new Promise((r) => setTimeout(r, 300));
      expect(device.connected).toBe(true);

      const gone = closed(device);
      const revoked = await shelf('revoke', id);
      expect(revoked.out).toMatch(new RegExp(`device ${id}: credential disabled at`));
      await gone;
      expect(await refusal({ clientId: id, username: id, password: env.MQTT_PASSWORD! })).toBe(NOT_AUTHORIZED);
      expect((await shelf('add', 'bad/id')).err).toMatch(/device id/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('real agents connect with the MQTT_USERNAME/MQTT_PASSWORD they were provisioned with; one with a wrong password is refused and stores nothing', async () => {
    const prefix = `fleet-${tag}-`;
    const passwords = new Map<string, string>();
    for (const i of [1, 2, 3]) passwords.set(`${prefix}${i}`, (await provision(`${prefix}${i}`)).password);
    passwords.set(`${prefix}3`, 'not-the-password');
    const stateDir = mkdtempSync(join(tmpdir(), 'shelfsight-auth-fleet-'));
    const fleet = await startSimulatedFleet({
      agents: 3,
      rate: 50,
      framesPerAgent: 5,
      deviceIdPrefix: prefix,
      site: `site-${tag}`,
      mqttUrl: sut.hub.mqttUrl,
      stateDir,
      credentials: (deviceId) => ({ username: deviceId, password: passwords.get(deviceId)! }),
      agent: { reconnectMinMs: 50, reconnectMaxMs: 200, shutdownFlushMs: 0 },
      logger: silentLogger,
    });
    try {
      const [one, two, three] = fleet.agents as [(typeof fleet.agents)[0], (typeof fleet.agents)[0], (typeof fleet.agents)[0]];
      const storedPerDevice = async () =>
        (
          await sql.query<{ device_id: string; n: string }>(
            'SELECT device_id, count(*) AS n FROM detections WHERE device_id LIKE $1 GROUP BY device_id ORDER BY device_id',
            [`${prefix}%`],
          )
        ).rows.map((r) => [r.device_id, Number(r.n)]);
      const expected = [
        [`${prefix}1`, 5],
        [`${prefix}2`, 5],
      ];
      await eventually(async () => (JSON.stringify(await storedPerDevice()) === JSON.stringify(expected) ? true : undefined), 45_000, 'detections of the provisioned agents');
      await Promise.all([one.idle(30_000), two.idle(30_000)]);
      await eventually(async () => (three.stats().link.authFailures >= 2 ? true : undefined), 15_000, 'refusals of the wrong password');
      expect(three.stats().connected).toBe(false);
      expect(await storedPerDevice()).toEqual(expected);
    } finally {
      await fleet.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('`shelf sim --api-key` issues each simulated device its own credential and gets everything acknowledged', async () => {
    const prefix = `cli-${tag}-`;
    const stateDir = mkdtempSync(join(tmpdir(), 'shelfsight-auth-sim-'));
    const args = ['sim', '--agents', '3', '--frames-per-agent', '4', '--rate', '50', '--device-prefix', prefix, '--site', `site-${tag}`];
    args.push('--mqtt-url', sut.hub.mqttUrl, '--hub-url', sut.hub.httpUrl, '--api-key', apiKey, '--state-dir', stateDir, '--timeout-s', '60');
    const sim = spawnShelf(args, { LOG_LEVEL: 'warn' });
    try {
      expect(await sim.exited).toBe(0);
      expect(sim.stderr()).toContain('issued 3 device credentials');
      expect(JSON.parse(sim.stdout().trim().split('\n').pop()!)).toMatchObject({ detected: 12, unacked: 0 });
      const stored = await sql.query('SELECT count(*)::int AS n FROM detections WHERE device_id LIKE $1', [`${prefix}%`]);
      expect(stored.rows[0].n).toBe(12);
    } finally {
      await sim.stop('SIGKILL');
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
