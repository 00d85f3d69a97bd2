import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { metricSum, silentLogger } from '@shelfsight/common';
import {
  DEFAULT_MODEL_LINE,
  deviceTopic,
  encodePayload,
  labelsHash,
  ModelOfferSchema,
  SCHEMA_VERSION,
  signKeyList,
  signManifest,
  signModelCommand,
  type ModelOffer,
  type SignedKeyList,
} from '@shelfsight/contracts';
import { agentConfig, STAND_IN_BACKBONE_CHECKSUM, STAND_IN_CATEGORIES, StandInClassifier, standInHeadArtifact, startAgent, type AgentHandle } from '@shelfsight/agent';
import { MILK_TO_YOGURT, quarterMilkFrame, seedStandInVersion } from '../support/flipped-head';
import { eventually, hubFetch, type TestHub } from '../support/test-hub';

/**
 * The fleet half of the trust harness: real agents (the agent's own code, stand-in
 * classifier, in this process) on the hub's broker, taking real rollouts from the hub; an
 * attacker who can publish on the broker (a compromised broker or a device's leaked broker
 * password: signatures are what protects the fleet) forges offers and commands, replays a
 * genuine manifest, and signs with a release key the root has revoked; and a head whose
 * shadow run would flip a category is rolled out with the default policy.
 */

export interface FleetAttackResult {
  name: string;
  refused: boolean;
  outcome: string;
}

interface RolloutJson {
  id: string;
  state: string;
  haltReason: string | null;
  haltAction?: string | null;
  devices?: Array<{ deviceId: string; stage: number; state: string; reason: string | null; activeVersion: string | null }>;
}

export async function fleetAttacks(
  sut: TestHub,
  work: string,
  log: (m: string) => void,
  counters: { devices_left_on_halted_version: number },
  report: (r: FleetAttackResult) => void,
): Promise<void> {
  const url = sut.hub.httpUrl;
  const tag = randomBytes(3).toString('hex');
  const ids = [1, 2, 3, 4].map((n) => `trust-dev-${tag}-${n}`);
  const agents = new Map<string, AgentHandle>();
  const dir = join(work, 'fleet');
  mkdirSync(dir, { recursive: true });
  const trustedKeys = join(dir, 'trusted-keys');
  writeFileSync(trustedKeys, await (await hubFetch(`${url}/rollouts/trusted-keys`)).text());
  // Every offer the hub publishes (the attacker reads the broker too: a genuine manifest to replay).
  const attacker: MqttClient = await connectAsync(sut.hub.mqttUrl, { clientId: `attacker-${tag}` });
  const offers: ModelOffer[] = [];
  attacker.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    try {
      offers.push(ModelOfferSchema.parse(JSON.parse(payload.toString())));
    } catch {
      // not an offer
    }
  });
  await attacker.subscribeAsync('shelfsight/v1/devices/+/model-offer', { qos: 1 });
  // Real-looking frames (the stand-in head's category comes from their hash; a shadowed head sees them too), a quarter milk.
  let k = 0;
  const feeder = setInterval(() => {
    k += 1;
    for (const a of agents.values()) a.offer({ frameId: `t-${k}`, site: `trust-${tag}`, location: `A-0${(k % 4) + 1}-1-A`, capturedAt: new Date().toISOString(), image: quarterMilkFrame(k), source: 'test' });
  }, 40);

  const seed = (version: string, labels: string[]) => seedStandInVersion(sut, version, labels);
  const view = async (id: string) => (await (await hubFetch(`${url}/rollouts/${id}`)).json()) as RolloutJson;
  const rollOut = async (version: string, devices: string[], stages: number[] = [100], policy: Record<string, unknown> = { shadowFrames: 5 }) => {
    const res = await hubFetch(`${url}/rollouts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ modelVersion: version, target: { deviceIds: devices }, stages: stages.map((percent) => ({ percent, minSoakSeconds: 0, abort: { maxFailurePercent: 0, minDevices: 1 } })), policy }),
    });
    const body = (await res.json()) as RolloutJson & { message?: string };
    if (res.status !== 201) throw new Error(`POST /rollouts ${version}: HTTP ${res.status} ${body.message}`);
    return body;
  };
  const untilEnded = (id: string, ms = 60_000) =>
    eventually(async () => {
      const v = await view(id);
      return ['completed', 'halted', 'aborted'].includes(v.state) ? v : undefined;
    }, ms, `rollout ${id} to end`);
  const active = (id: string) => agents.get(id)!.heads.modelVersion;
  const agentMetric = async (id: string, name: string, labels: Record<string, string> = {}) => metricSum(await agents.get(id)!.metrics(), name, labels);
  const hubMetric = async (name: string) => metricSum(await (await hubFetch(`${url}/metrics`)).text(), name);
  const publish = (deviceId: string, channel: 'model-offer' | 'model-command', payload: Buffer | string) => attacker.publishAsync(deviceTopic(deviceId, channel), payload, { qos: 1 });
  /** An offer for `deviceId` of a stand-in head, signed with `signer`, under `offerId`. */
  const forgedOffer = (deviceId: string, o: { version: string; labels: string[]; artifact: Buffer; counter: number; signer: KeyObject; offerId: string; artifactPath: string }) => {
    const now = Date.now();
    const signed = signManifest(
      {
        modelVersion: o.version,
        offerId: o.offerId,
        modelLine: DEFAULT_MODEL_LINE,
        releaseCounter: o.counter,
        backbone: { id: 'stand-in', checksum: STAND_IN_BACKBONE_CHECKSUM },
        labelsHash: labelsHash(o.labels),
        artifact: { sha256: createHash('sha256').update(o.artifact).digest('hex'), length: o.artifact.length },
        issuedAt: new Date(now - 60_000).toISOString(),
        expiresAt: new Date(now + 3_600_000).toISOString(),
      },
      o.signer,
    );
    return encodePayload(ModelOfferSchema, { v: SCHEMA_VERSION, deviceId, offerId: o.offerId, signed, artifactPath: o.artifactPath, offeredAt: new Date().toISOString(), policy: { shadowFrames: 0 } });
  };

  try {
    log(`fleet: ${ids.length} agents (stand-in classifier) on the hub's broker`);
    for (const id of ids) {
      const cred = await hubFetch(`${url}/devices/${id}/credentials`, { method: 'POST' });
      const { password } = (await cred.json()) as { password: string };
      const config = agentConfig({ deviceId: id, site: `trust-${tag}`, mqttUrl: sut.hub.mqttUrl, mqttUsername: id, mqttPassword: password, stateDir: join(dir, id), trustedKeys, hubHttpUrl: url, shadowFrames: 5, heartbeatMs: 200 });
      agents.set(id, await startAgent(config, { classifier: new StandInClassifier('stand-in-1'), logger: silentLogger }));
    }
    await eventually(async () => {
      const list = (await (await hubFetch(`${url}/devices`)).json()) as Array<{ id: string; backboneId: string | null }>;
      return ids.every((id) => list.some((d) => d.id === id && d.backboneId === 'stand-in')) ? true : undefined;
    }, 30_000, 'agents online');
    const stranger = generateKeyPairSync('ed25519');

    // --- A forged offer carrying a real rollout id, while that rollout runs.
    {
      const name = 'forged offer carrying a real rollout id (signed by a key no root listed)';
      const vA = `trust-a-${tag}`;
      const artifactA = await seed(vA, STAND_IN_CATEGORIES);
      const attacksBefore = await hubMetric('shelfsight_rollout_attacks_total');
      const r = await rollOut(vA, ids.slice(0, 2), [100], { shadowFrames: 10 });
      const evil = standInHeadArtifact(`evil-${tag}`, MILK_TO_YOGURT);
      await publish(ids[1]!, 'model-offer', forgedOffer(ids[1]!, { version: `evil-${tag}`, labels: MILK_TO_YOGURT, artifact: evil, counter: 1_000_000, signer: stranger.privateKey, offerId: r.id, artifactPath: `/rollouts/artifacts/${vA}` }));
      const ended = await untilEnded(r.id);
      const attacksAfter = await eventually(async () => {
        const n = await hubMetric('shelfsight_rollout_attacks_total');
        return n > attacksBefore ? n : undefined;
      }, 10_000, 'the forged offer counted as an attack').catch(() => attacksBefore);
      const refused = ended.state === 'completed' && active(ids[1]!) === vA && attacksAfter > attacksBefore;
      report({ name, refused, outcome: `rollout ${ended.state}${ended.haltReason ? ` (${ended.haltReason})` : ''}; device on ${active(ids[1]!)}; hub counted ${attacksAfter - attacksBefore} attack(s)` });

      // --- A forged rollback command for that rollout.
      const cmdName = 'forged rollback command (stranger key, and unsigned)';
      const refusedBefore = await agentMetric(ids[0]!, 'shelf_agent_model_commands_refused_total');
      const malformedBefore = await agentMetric(ids[0]!, 'shelf_agent_model_commands_malformed_total');
      const now = Date.now();
      const forged = signModelCommand(
        { deviceId: ids[0]!, offerId: r.id, command: 'rollback', modelVersion: vA, issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 600_000).toISOString() },
        stranger.privateKey,
      );
      await publish(ids[0]!, 'model-command', JSON.stringify(forged));
      await publish(ids[0]!, 'model-command', JSON.stringify({ v: SCHEMA_VERSION, deviceId: ids[0]!, offerId: r.id, command: 'rollback', modelVersion: vA, issuedAt: new Date().toISOString() }));
      const seen = await eventually(async () => {
        const refusedN = (await agentMetric(ids[0]!, 'shelf_agent_model_commands_refused_total')) - refusedBefore;
        const malformedN = (await agentMetric(ids[0]!, 'shelf_agent_model_commands_malformed_total')) - malformedBefore;
        return refusedN + malformedN >= 2 ? { refusedN, malformedN } : undefined;
      }, 10_000, 'both forged commands refused').catch(() => ({ refusedN: 0, malformedN: 0 }));
      report({ name: cmdName, refused: active(ids[0]!) === vA && seen.refusedN + seen.malformedN >= 2, outcome: `device still on ${active(ids[0]!)}; refused ${seen.refusedN} signed-by-stranger, ${seen.malformedN} unsigned` });

      // --- A replayed older manifest for another label list.
      const replayName = 'replayed older manifest for another label list (genuine, unexpired)';
      const genuine = offers.find((o) => o.deviceId === ids[0] && o.signed.manifest.modelVersion === vA);
      const vB = `trust-b-${tag}`;
      await seed(vB, [...STAND_IN_CATEGORIES, 'kefir']);
      // A head that adds a category changes what devices see: the operator turns the shadow gate off, with a reason (audited).
      const rB = await rollOut(vB, ids.slice(0, 2), [100], { shadowGate: false, shadowFrames: 0, overrideReason: 'trust harness: kefir added to the shelf on purpose' });
      const endedB = await untilEnded(rB.id);
      if (!genuine || endedB.state !== 'completed') {
        report({ name: replayName, refused: false, outcome: `setup failed: genuine offer ${genuine ? 'seen' : 'not seen'}, rollout of ${vB} ${endedB.state} ${endedB.haltReason ?? ''}` });
      } else {
        const statusesBefore = await agentMetric(ids[0]!, 'shelf_agent_model_rejected_total', { reason: 'replayed_counter' });
        await publish(ids[0]!, 'model-offer', encodePayload(ModelOfferSchema, genuine));
        const rejected = await eventually(async () => ((await agentMetric(ids[0]!, 'shelf_agent_model_rejected_total', { reason: 'replayed_counter' })) > statusesBefore ? true : undefined), 10_000, 'replay refused').catch(() => false);
        report({ name: replayName, refused: rejected === true && active(ids[0]!) === vB, outcome: `replayed ${vA}'s manifest (counter ${genuine.signed.manifest.releaseCounter}) after ${vB}: ${rejected ? 'refused as replayed_counter' : 'NOT refused'}; device on ${active(ids[0]!)}` });
      }
      void artifactA;
    }

    // --- A leaked release key, revoked by a root-signed list: devices refuse its manifests without re-provisioning.
    {
      const name = 'leaked release key revoked through a root-signed key list';
      const rootFile = join(sut.dataDir, 'rollout-keys', 'demo-root-key.pem');
      const root = createPrivateKey(readFileSync(rootFile));
      const current = (await (await hubFetch(`${url}/rollouts/key-list`)).json()) as SignedKeyList;
      const leaked = generateKeyPairSync('ed25519');
      const list = (version: number, keys: Array<{ publicKey: string | KeyObject; name?: string }>) => {
        const now = Date.now();
        return signKeyList({ version, issuedAt: new Date(now - 1000).toISOString(), expiresAt: new Date(now + 30 * 86_400_000).toISOString(), keys }, root);
      };
      const postList = async (l: SignedKeyList) => {
        const res = await hubFetch(`${url}/rollouts/key-list`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(l) });
        if (res.status !== 200) throw new Error(`POST /rollouts/key-list: HTTP ${res.status} ${await res.text()}`);
      };
      const v0 = current.list.version;
      const listed = current.list.keys.map((x) => ({ publicKey: x.publicKey, ...(x.name ? { name: x.name } : {}) }));
      await postList(list(v0 + 1, [...listed, { publicKey: leaked.publicKey, name: 'leaked' }]));
      const onVersion = (v: number) => eventually(async () => ((await Promise.all(ids.map((id) => agentMetric(id, 'shelf_agent_key_list_version')))).every((x) => x === v) ? true : undefined), 15_000, `devices on key list v${v}`);
      await onVersion(v0 + 1);
      // While listed, the leaked key's manifest is taken (the leak is real)...
      const vL = `trust-leak-${tag}`;
      const artifactL = await seed(vL, STAND_IN_CATEGORIES);
      const leakedOffer = (deviceId: string, counter: number) => forgedOffer(deviceId, { version: vL, labels: STAND_IN_CATEGORIES, artifact: artifactL, counter, signer: leaked.privateKey, offerId: `leak-${counter}-${tag}`, artifactPath: `/rollouts/artifacts/${vL}` });
      // While listed, its manifest passes verification (the leak is real): the device goes on to fetch the head
      // (which the hub serves only to devices its rollouts target, so the download is where it stops).
      const rejectedBy = async (id: string) => {
        const text = await agents.get(id)!.metrics();
        return Object.fromEntries(['unknown_key', 'bad_signature', 'download_failed', 'hash_mismatch'].map((r) => [r, metricSum(text, 'shelf_agent_model_rejected_total', { reason: r })]));
      };
      const beforeListed = await rejectedBy(ids[2]!);
      await publish(ids[2]!, 'model-offer', leakedOffer(ids[2]!, 5_000_000));
      const whileListed = await eventually(async () => {
        const now = await rejectedBy(ids[2]!);
        const moved = Object.entries(now).filter(([r, n]) => n > (beforeListed[r] ?? 0)).map(([r]) => r);
        return active(ids[2]!) === vL ? 'activated' : moved.length > 0 ? `refused later for ${moved.join(',')}` : undefined;
      }, 15_000, 'leaked-key offer handled while listed').catch(() => 'no answer');
      const verifiedWhileListed = whileListed !== 'no answer' && !whileListed.includes('unknown_key');
      // ...then the root revokes it: a newer list without it, published through the hub (retained on MQTT).
      await postList(list(v0 + 2, listed));
      await onVersion(v0 + 2);
      const before = await agentMetric(ids[3]!, 'shelf_agent_model_rejected_total', { reason: 'unknown_key' });
      await publish(ids[3]!, 'model-offer', leakedOffer(ids[3]!, 6_000_000));
      const refusedAfter = await eventually(async () => ((await agentMetric(ids[3]!, 'shelf_agent_model_rejected_total', { reason: 'unknown_key' })) > before ? true : undefined), 10_000, 'revoked key refused').catch(() => false);
      report({
        name,
        refused: verifiedWhileListed && refusedAfter === true && active(ids[3]!) !== vL,
        outcome: `while list v${v0 + 1} named the leaked key its manifest verified (${whileListed}); after v${v0 + 2} revoked it: ${refusedAfter === true ? 'refused (unknown_key)' : 'NOT refused'} by another device (no re-provisioning), which stays on ${active(ids[3]!)}`,
      });
      // The device that took the leaked head goes back (not part of the verdict; later rollouts need it idle).
    }

    // --- A head whose shadow run would flip one category: halted at the canary stage, the canary rolled back.
    {
      const name = 'head whose shadow run flips one category (milk → yogurt): halted at the canary stage, canaries rolled back';
      const vF = `trust-flip-${tag}`;
      await seed(vF, MILK_TO_YOGURT);
      // Devices on other rollouts' versions are fine targets: the flip is judged against whatever each runs.
      const targets = [ids[0]!, ids[1]!, ids[3]!, ids[2]!];
      // The devices' own checks loosened (the worst an operator may do short of turning the gate off): the hub's pooled
      // predicted inventory change (default limits) must halt the canary stage, and the default onHalt rolls back.
      const r = await rollOut(vF, targets, [50, 100], { shadowFrames: 20, shadowGate: { minAgreement: 0, maxCategoryShift: 1 } });
      const ended = await untilEnded(r.id);
      const settled = await eventually(
        async () => {
          const v = await view(r.id);
          const canaries = (v.devices ?? []).filter((d) => d.stage === 0);
          return canaries.every((d) => d.state === 'rolled_back' || d.state === 'rejected') ? v : undefined;
        },
        30_000,
        'canaries rolled back',
      ).catch(() => undefined);
      const final = settled ?? (await view(r.id));
      const onHalted = targets.filter((id) => active(id) === vF).length + (final.devices ?? []).filter((d) => d.activeVersion === vF && !targets.includes(d.deviceId)).length;
      counters.devices_left_on_halted_version += onHalted;
      const laterStageOffered = (final.devices ?? []).some((d) => d.stage > 0 && d.state !== 'pending');
      report({
        name,
        refused: ended.state === 'halted' && /predicted inventory change/.test(String(ended.haltReason)) && settled !== undefined && onHalted === 0 && !laterStageOffered,
        outcome: `rollout ${ended.state}: ${String(ended.haltReason).slice(0, 140)}; canaries ${(final.devices ?? []).filter((d) => d.stage === 0).map((d) => d.state).join(',')}; devices on ${vF}: ${onHalted}`,
      });
    }
  } finally {
    clearInterval(feeder);
    for (const a of agents.values()) await a.stop().catch(() => undefined);
    await attacker.endAsync(true).catch(() => undefined);
  }
}
