import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectAsync } from 'mqtt';
import { Client } from 'pg';
import { withTimeout } from '@shelfsight/common';
import { DEVICE_PUBLISH_CHANNELS, DEVICE_SUBSCRIBE_CHANNELS, deviceTopic, SCHEMA_VERSION } from '@shelfsight/contracts';
import { freePort } from '@shelfsight/cli';
import { detection, FakeDevice } from './support/fake-device';
import { portOpen } from './support/services';
import { startTestHub, type TestHub } from './support/test-hub';

const ACL = resolve(__dirname, '..', 'deploy', 'mosquitto.acl');
const hasMosquitto = spawnSync('mosquitto', ['-h']).error === undefined && spawnSync('mosquitto_passwd', ['-h']).error === undefined;

/** MQTT 3.1.1 CONNACK "not authorized". */
const NOT_AUTHORIZED = 5;

describe('deploy/mosquitto.acl', () => {
  it('gives devices exactly the channels of the contracts', () => {
    const acl = readFileSync(ACL, 'utf8');
    const channels = (access: string) =>
      [...acl.matchAll(new RegExp(`^pattern ${access} shelfsight/v1/devices/%u/([\\w-]+)$`, 'gm'))].map((m) => m[1]).sort();
    expect(channels('write')).toEqual([...DEVICE_PUBLISH_CHANNELS].sort());
    expect(channels('read')).toEqual([...DEVICE_SUBSCRIBE_CHANNELS].sort());
    expect(acl).not.toMatch(/^pattern readwrite/m);
  });

  // Skipped only where Mosquitto is not installed, and never in CI (which must have it).
  (hasMosquitto || process.env.CI ? describe : describe.skip)('on a real Mosquitto with a password file', () => {
    let dir: string;
    let broker: ChildProcess;
    let url: string;
    let sut: TestHub;
    let sql: Client;
    const password = { 'shelfsight-hub': 'hub-secret', 'dev-a': 'a-secret', 'dev-b': 'b-secret' };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'shelfsight-mosquitto-'));
      const passwd = join(dir, 'passwd');
      for (const [i, [user, pw]] of Object.entries(password).entries()) {
        const r = spawnSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', passwd, user, pw]);
        if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr.toString()}`);
      }
      const port = await freePort();
      const conf = join(dir, 'mosquitto.conf');
      writeFileSync(
        conf,
        [
          `listener ${port} 127.0.0.1`,
          'allow_anonymous false',
          `password_file ${passwd}`,
          `acl_file ${ACL}`,
          'persistence false',
          // Run as root (CI), mosquitto would switch to its own user, who cannot read the temp dir.
          ...(process.getuid?.() === 0 ? ['user root'] : []),
        ].join('\n') + '\n',
      );
      broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
      broker.once('error', () => undefined); // not installed: reported by the wait below
      const deadline = Date.now() + 10_000;
      while (!(await portOpen('127.0.0.1', port))) {
        if (Date.now() > deadline) throw new Error('mosquitto did not start (is the mosquitto package installed?)');
        await new Promise((r) => setTimeout(r, 100));
      }
      url = `mqtt://127.0.0.1:${port}`;
      sut = await startTestHub('pglite', 'aedes', { MQTT_URL: `mqtt://shelfsight-hub:${password['shelfsight-hub']}@127.0.0.1:${port}` });
      sql = new Client({ connectionString: sut.hub.databaseUrl });
      await sql.connect();
    });

    afterAll(async () => {
      await withTimeout(sql?.end() ?? Promise.resolve(), 5000);
      await sut?.stop();
      broker?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    const rowsOf = async (deviceId: string) => Number((await sql.query('SELECT count(*) FROM detections WHERE device_id = $1', [deviceId])).rows[0].count);

    it('refuses a wrong password', async () => {
      await expect(connectAsync(url, { clientId: 'x', username: 'dev-a', password: 'wrong', reconnectPeriod: 0 })).rejects.toMatchObject({ code: NOT_AUTHORIZED });
    });

    it('lets a device publish and read its acks under its own id, and nowhere else', async () => {
      const a = await FakeDevice.connect(url, 'dev-a', { username: 'dev-a', password: password['dev-a'] });
      const b = await FakeDevice.connect(url, 'dev-b', { username: 'dev-b', password: password['dev-b'] });
      // A second connection of dev-a that tries to speak for dev-b and to read dev-b's acks.
      const spy = await connectAsync(url, { clientId: 'dev-a-spy', username: 'dev-a', password: password['dev-a'], reconnectPeriod: 0 });
      const seen: string[] = [];
      spy.on('message', (topic) => seen.push(topic));
      try {
        await a.sendDetections([detection(1, { site: 'acl' })]);
        await a.waitForAcks([1]);
        expect(await rowsOf('dev-a')).toBe(1);

        const forged = { v: SCHEMA_VERSION, deviceId: 'dev-b', epoch: 'epoch-1', sentAt: new Date().toISOString(), detections: [detection(99, { site: 'acl' })] };
        await spy.publishAsync(deviceTopic('dev-b', 'detections'), JSON.stringify(forged), { qos: 1 });
        await spy.subscribeAsync([deviceTopic('dev-b', 'ack'), deviceTopic('dev-a', 'ack')], { qos: 1 });

        await b.sendDetections([detection(1, { site: 'acl' })]);
        await b.waitForAcks([1]);
        // The hub acks dev-b, then dev-a; the broker delivers in that order, so once the
        // spy holds dev-a's ack it would also hold dev-b's, had the ACL let it through.
        await a.sendDetections([detection(2, { site: 'acl' })]);
        await a.waitForAcks([2]);
        const deadline = Date.now() + 10_000;
        while (!seen.includes(deviceTopic('dev-a', 'ack')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(seen).toContain(deviceTopic('dev-a', 'ack'));
        expect(seen).not.toContain(deviceTopic('dev-b', 'ack'));

        // The forged batch went in before dev-b's own and never reached the hub.
        const bRows = await sql.query('SELECT seq::int AS seq FROM detections WHERE device_id = $1', ['dev-b']);
        expect(bRows.rows).toEqual([{ seq: 1 }]);
        expect(await rowsOf('dev-a')).toBe(2);
      } finally {
        await spy.endAsync();
        await a.close();
        await b.close();
      }
    });

    it('delivers model offers only to their device and takes rollout status only from it', async () => {
      const hub = await connectAsync(url, { clientId: 'acl-hub-rollout', username: 'shelfsight-hub', password: password['shelfsight-hub'], reconnectPeriod: 0 });
      const dev = await connectAsync(url, { clientId: 'acl-dev-a-rollout', username: 'dev-a', password: password['dev-a'], reconnectPeriod: 0 });
      const toDevice: string[] = [];
      const toHub: string[] = [];
      dev.on('message', (topic) => toDevice.push(topic));
      hub.on('message', (topic) => toHub.push(topic));
      const until = async (cond: () => boolean) => {
        const deadline = Date.now() + 10_000;
        while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      };
      try {
        await dev.subscribeAsync([deviceTopic('dev-b', 'model-offer'), deviceTopic('dev-a', 'model-offer')], { qos: 1 });
        await hub.subscribeAsync('shelfsight/v1/devices/+/rollout-status', { qos: 1 });
        // Same publisher, same QoS: delivered in order, so dev-a's arriving means dev-b's was refused.
        await hub.publishAsync(deviceTopic('dev-b', 'model-offer'), '{}', { qos: 1 });
        await hub.publishAsync(deviceTopic('dev-a', 'model-offer'), '{}', { qos: 1 });
        await dev.publishAsync(deviceTopic('dev-b', 'rollout-status'), '{}', { qos: 1 });
        await dev.publishAsync(deviceTopic('dev-a', 'rollout-status'), '{}', { qos: 1 });
        await until(() => toDevice.length > 0 && toHub.length > 0);
        expect(toDevice).toEqual([deviceTopic('dev-a', 'model-offer')]);
        expect(toHub).toEqual([deviceTopic('dev-a', 'rollout-status')]);
      } finally {
        await dev.endAsync();
        await hub.endAsync();
      }
    });
  });
});
