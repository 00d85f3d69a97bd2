import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import {
  DEFAULT_MODEL_LINE,
  ModelCommandSchema,
  ModelOfferSchema,
  SCHEMA_VERSION,
  deviceTopic,
  encodePayload,
  labelsHash,
  signManifest,
  signModelCommand,
  type RolloutStatus,
} from '@shelfsight/contracts';
import { STAND_IN_BACKBONE_CHECKSUM, STAND_IN_CATEGORIES, standInHeadArtifact } from '../classify/stand-in-classifier';
import { FakeHub, waitUntil } from '../testing/fake-hub';
import { writeFrames } from '../testing/frames';
import { startRolloutRig, type RolloutRig } from '../testing/rollout-rig';
import type { TestBroker } from '../testing/test-broker';

const ROOT = path.resolve(__dirname, '../../../..');

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** `kill -9` of a real `shelf agent` process at random moments around a head activation. */
describe('agent rollout crash (kill -9 during activation)', () => {
  let tmp: string;
  let broker: TestBroker;
  let hub: FakeHub;
  let operator: MqttClient;
  let testbed: RolloutRig;
  let child: ChildProcess | undefined;
  const artifacts = new Map<string, Buffer>();
  const statuses: RolloutStatus[] = [];
  const deviceId = `rollout-crash-${process.pid}`;
  const key = generateKeyPairSync('ed25519');

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-rollout-crash-'));
    testbed = await startRolloutRig({ operatorId: `operator-${process.pid}`, statusTopic: deviceTopic(deviceId, 'rollout-status'), statuses, artifacts, releaseKeys: [key.privateKey] });
    ({ broker, hub, operator } = testbed);
  });

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await testbed.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  /** A `shelf agent` on the stand-in with trusted keys and a frames folder, and the offers and statuses around it. */
  const rig = async () => {
    await fsp.writeFile(path.join(tmp, 'keys'), testbed.trustedKeysFile);
    const framesDir = path.join(tmp, 'frames');
    let nextFrame = 0;
    const moreFrames = async (count: number) => {
      await writeFrames(framesDir, count, nextFrame);
      nextFrame += count;
    };
    await moreFrames(5);
    const args = [
      ...['--device-id', deviceId, '--site', 'site-1', '--classifier', 'stand-in', '--mqtt-url', broker.url],
      ...['--frames-dir', framesDir, '--state-dir', path.join(tmp, 'state'), '--poll-ms', '20', '--settle-ms', '0'],
      ...['--trusted-keys', path.join(tmp, 'keys'), '--hub-http-url', testbed.httpUrl, '--shadow-frames', '3'],
      ...['--reconnect-min-ms', '50', '--reconnect-max-ms', '200'],
    ];
    const spawnAgent = () => {
      const c = spawn(process.execPath, [path.join(ROOT, 'bin/shelf.js'), 'agent', ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
      c.stderr?.on('data', () => undefined);
      return c;
    };
    const offer = async (version: string, counter: number) => {
      const categories = counter % 2 === 0 ? [...STAND_IN_CATEGORIES].reverse() : STAND_IN_CATEGORIES;
      const artifact = standInHeadArtifact(version, categories);
      artifacts.set(`/artifacts/${version}`, artifact);
      const signed = signManifest(
        {
          modelVersion: version,
          offerId: `o-${version}`,
          modelLine: DEFAULT_MODEL_LINE,
          releaseCounter: counter,
          backbone: { id: 'stand-in', checksum: STAND_IN_BACKBONE_CHECKSUM },
          labelsHash: labelsHash(categories),
          artifact: { sha256: createHash('sha256').update(artifact).digest('hex'), length: artifact.length },
          issuedAt: new Date(Date.now() - 60_000).toISOString(),
          expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
        },
        key.privateKey,
      );
      const payload = encodePayload(ModelOfferSchema, { v: SCHEMA_VERSION, deviceId, offerId: `o-${version}`, signed, artifactPath: `/artifacts/${version}`, offeredAt: new Date().toISOString() });
      // Retained, as the hub offers: a device that was down gets it when it returns.
      await operator.publishAsync(deviceTopic(deviceId, 'model-offer'), payload, { qos: 1, retain: true });
    };
    const seen = (version: string, state: RolloutStatus['state']) => statuses.some((s) => s.modelVersion === version && s.state === state);
    const births = () => hub.births.filter((b) => b.deviceId === deviceId);
    return { moreFrames, spawnAgent, offer, seen, births };
  };

  it('restarts on the old head or the new one, never a broken one, whenever it is killed', async () => {
    const { moreFrames, spawnAgent, offer, seen, births } = await rig();
    child = spawnAgent();
    await waitUntil(() => births().length === 1, 60_000, 'first birth');
    let active = 'stand-in-1';
    const cameBackOn: string[] = [];
    for (let k = 2; k <= 9; k++) {
      const version = `v${k}`;
      statuses.length = 0;
      await offer(version, k);
      await waitUntil(() => seen(version, 'shadowing'), 30_000, `${version} shadowing`);
      await moreFrames(6); // the shadow completes and the head activates within these frames
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 120)));
      child.kill('SIGKILL');
      expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });

      const before = births().length;
      child = spawnAgent();
      await waitUntil(() => births().length === before + 1, 60_000, `birth after kill ${k}`);
      const on = births().at(-1)?.modelVersion as string;
      cameBackOn.push(on);
      // Whole heads only: the one active before the swap or the one being swapped in.
      expect([active, version]).toContain(on);
      // The retained offer finishes the rollout if the kill came before the pointer was written.
      await moreFrames(6);
      await waitUntil(() => seen(version, 'active'), 30_000, `${version} active after restart`, () => statuses.map((s) => `${s.modelVersion}:${s.state}`));
      expect(statuses.filter((s) => s.state === 'rolled_back' || s.state === 'rejected')).toEqual([]);
      active = version;
    }
    const pointer = JSON.parse(await fsp.readFile(path.join(tmp, 'state', 'models', 'active.json'), 'utf8')) as { version: string };
    expect(pointer.version).toBe('v9');
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    console.log(`rollout kill -9: restarted on ${cameBackOn.join(', ')}`);
  });
  it('after a kill -9 during a rollback, restarts on the head it left or the one it returned to, and never installs the rolled-back offer again', async () => {
    const { moreFrames, spawnAgent, offer, seen, births } = await rig();
    const rollback = (version: string) =>
      operator.publishAsync(
        deviceTopic(deviceId, 'model-command'),
        encodePayload(
          ModelCommandSchema,
          signModelCommand({ deviceId, offerId: `o-${version}`, command: 'rollback', modelVersion: version, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString() }, key.privateKey),
        ),
        { qos: 1 },
      );
    const restart = async (what: string) => {
      const before = births().length;
      child = spawnAgent();
      await waitUntil(() => births().length === before + 1, 60_000, what);
      return births().at(-1)?.modelVersion as string;
    };
    child = spawnAgent();
    await waitUntil(() => births().length === 1, 60_000, 'first birth');
    // The head every rollback returns to.
    await offer('v1', 1);
    await waitUntil(() => seen('v1', 'shadowing'), 30_000, 'v1 shadowing');
    await moreFrames(4);
    await waitUntil(() => seen('v1', 'active'), 30_000, 'v1 active');
    const cameBackOn: string[] = [];
    for (let k = 2; k <= 6; k++) {
      const version = `v${k}`;
      statuses.length = 0;
      await offer(version, k);
      await waitUntil(() => seen(version, 'shadowing'), 30_000, `${version} shadowing`);
      await moreFrames(4);
      await waitUntil(() => seen(version, 'active'), 30_000, `${version} active`);
      await rollback(version);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)));
      child.kill('SIGKILL');
      expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });

      const on = await restart(`birth after kill ${k}`);
      cameBackOn.push(on);
      // Whole heads only: the one being rolled back or the one it returns to.
      expect(['v1', version]).toContain(on);
      if (on === version) {
        // The kill came before the rollback was recorded: the operator asks again.
        await rollback(version);
        await waitUntil(() => seen(version, 'rolled_back'), 30_000, `${version} rolled back after restart`, () => statuses.map((s) => `${s.modelVersion}:${s.state}:${s.reason ?? ''}:${s.detail ?? ''}`));
        child.kill('SIGKILL');
        await exited(child);
        expect(await restart(`birth after rollback ${k}`)).toBe('v1');
      }
      // The retained offer comes with every connect: refused, never installed again.
      await waitUntil(
        () => statuses.some((s) => s.modelVersion === version && s.reason === 'rolled_back_before'),
        30_000,
        `${version} refused as rolled back before`,
        () => statuses.map((s) => `${s.modelVersion}:${s.state}:${s.reason ?? ''}`),
      );
      const afterRollback = statuses.findIndex((s) => s.modelVersion === version && (s.state === 'rolled_back' || s.reason === 'rolled_back_before'));
      expect(statuses.slice(afterRollback).filter((s) => s.modelVersion === version && s.state === 'active')).toEqual([]);
    }
    const pointer = JSON.parse(await fsp.readFile(path.join(tmp, 'state', 'models', 'active.json'), 'utf8')) as { version: string };
    expect(pointer.version).toBe('v1');
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    console.log(`rollback kill -9: restarted on ${cameBackOn.join(', ')}`);
  });
});
