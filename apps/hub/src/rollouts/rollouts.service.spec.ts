import { Logger } from '@nestjs/common';
import { SCHEMA_VERSION, type ModelCommand, type ModelOffer, type RolloutStatus, type SignedManifest } from '@shelfsight/contracts';
import type { DeviceLink } from '../broker/device-link';
import type { HubConfig } from '../config/hub-config';
import { EventBus } from '../events/event-bus';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import type { ModelsRepository, ModelVersionRow } from '../models/models.repository';
import { DownloadTokens } from './download-tokens';
import type { CreateRollout, RolloutState } from './rollout.dto';
import type { RolloutStatusWriter } from './rollout-status-writer';
import { RolloutConflictError, RolloutRefusedError, RolloutStateError } from './rollouts.error';
import type { RolloutDeviceRow, RolloutRow, RolloutsRepository, StageCountRow, TargetDeviceRow } from './rollouts.repository';
import { RolloutsService } from './rollouts.service';
import type { SigningKeys } from './signing-keys';

type Repo = Pick<
  RolloutsRepository,
  | 'targetDevices'
  | 'insertRollout'
  | 'findRollout'
  | 'listRollouts'
  | 'runningRollouts'
  | 'stageCounts'
  | 'shadowReports'
  | 'stoppedOfferFor'
  | 'devicesOf'
  | 'transition'
  | 'promote'
  | 'replaceSigned'
  | 'devicesToOffer'
  | 'markOffered'
  | 'openOfferFor'
  | 'withEngineLock'
>;

/** The rollouts tables at their boundary, with the rules their SQL holds (one open rollout per device, guarded transitions). */
class FakeRollouts implements Repo {
  fleet: TargetDeviceRow[] = [];
  readonly rollouts = new Map<string, RolloutRow>();
  devices: RolloutDeviceRow[] = [];
  readonly resigned: string[] = [];
  /** Device -> the version it runs (the devices table). */
  readonly running = new Map<string, string>();

  targetDevices(target: { deviceIds?: string[] }): Promise<TargetDeviceRow[]> {
    return Promise.resolve(target.deviceIds ? this.fleet.filter((d) => target.deviceIds!.includes(d.id)) : this.fleet);
  }

  insertRollout(r: Omit<RolloutRow, 'created_at' | 'updated_at' | 'finished_at'>, devices: Array<{ deviceId: string; stage: number }>) {
    const holder = this.devices.find((d) => devices.some((x) => x.deviceId === d.device_id) && ['running', 'paused', 'halted'].includes(this.rollouts.get(d.rollout_id)!.state));
    if (holder) return Promise.resolve({ conflict: { rolloutId: holder.rollout_id, deviceId: holder.device_id } });
    this.rollouts.set(r.id, { ...r, created_at: new Date(0), updated_at: new Date(0), finished_at: null });
    for (const d of devices) {
      this.devices.push({ rollout_id: r.id, device_id: d.deviceId, stage: d.stage, state: 'pending', reason: null, detail: null, previous_version: null, active_version: null, shadow: null, health: null, offered_at: null, status_at: null });
    }
    return Promise.resolve({});
  }

  findRollout(id: string): Promise<RolloutRow | undefined> {
    const r = this.rollouts.get(id);
    return Promise.resolve(r && structuredClone(r));
  }

  listRollouts(): Promise<RolloutRow[]> {
    return Promise.resolve([...this.rollouts.values()]);
  }

  runningRollouts(): Promise<RolloutRow[]> {
    return Promise.resolve([...this.rollouts.values()].filter((r) => r.state === 'running').map((r) => structuredClone(r)));
  }

  stageCounts(ids: string[]): Promise<StageCountRow[]> {
    const counts = new Map<string, StageCountRow>();
    for (const d of this.devices.filter((x) => ids.includes(x.rollout_id))) {
      const key = `${d.rollout_id}/${d.stage}/${d.state}`;
      const c = counts.get(key) ?? { rollout_id: d.rollout_id, stage: d.stage, state: d.state, n: 0 };
      c.n++;
      counts.set(key, c);
    }
    return Promise.resolve([...counts.values()]);
  }

  shadowReports(): Promise<[]> {
    return Promise.resolve([]);
  }

  stoppedOfferFor(deviceId: string) {
    const d = this.devices.find((x) => {
      const r = this.rollouts.get(x.rollout_id)!;
      return (
        x.device_id === deviceId &&
        x.offered_at !== null &&
        x.state === 'active' &&
        this.running.get(deviceId) === r.model_version &&
        ((r.state === 'halted' && r.halt_action === 'rollback') || r.state === 'rolled_back')
      );
    });
    return Promise.resolve(d && { rollout_id: d.rollout_id, state: d.state });
  }

  devicesOf(id: string): Promise<RolloutDeviceRow[]> {
    return Promise.resolve(this.devices.filter((d) => d.rollout_id === id));
  }

  transition(id: string, from: readonly RolloutState[], to: RolloutState, opts: { haltReason?: string; haltAction?: RolloutRow['halt_action'] } = {}): Promise<boolean> {
    const r = this.rollouts.get(id);
    if (!r || !from.includes(r.state)) return Promise.resolve(false);
    Object.assign(r, { state: to, halt_reason: opts.haltReason ?? r.halt_reason, halt_action: opts.haltAction ?? r.halt_action });
    return Promise.resolve(true);
  }

  promote(id: string, from: number, to: number, at: Date): Promise<boolean> {
    const r = this.rollouts.get(id)!;
    if (r.state !== 'running' || r.current_stage !== from) return Promise.resolve(false);
    r.current_stage = to;
    r.stage_started[to] = at.toISOString();
    return Promise.resolve(true);
  }

  replaceSigned(id: string, signed: SignedManifest): Promise<void> {
    this.resigned.push(id);
    this.rollouts.get(id)!.signed = signed;
    return Promise.resolve();
  }

  devicesToOffer() {
    return Promise.resolve(
      this.devices
        .filter((d) => {
          const r = this.rollouts.get(d.rollout_id)!;
          return r.state === 'running' && d.stage <= r.current_stage && d.offered_at === null;
        })
        .map((d) => ({ rollout_id: d.rollout_id, device_id: d.device_id })),
    );
  }

  markOffered(id: string, deviceIds: string[]): Promise<void> {
    for (const d of this.devices.filter((x) => x.rollout_id === id && deviceIds.includes(x.device_id))) {
      d.offered_at ??= new Date(0);
      if (d.state === 'pending') d.state = 'offered';
    }
    return Promise.resolve();
  }

  openOfferFor(deviceId: string) {
    const d = this.devices.find((x) => x.device_id === deviceId && x.offered_at !== null && this.rollouts.get(x.rollout_id)!.state === 'running');
    return Promise.resolve(d && { rollout_id: d.rollout_id, state: d.state });
  }

  withEngineLock<T>(fn: (repo: RolloutsRepository) => Promise<T>): Promise<T | undefined> {
    return fn(this as unknown as RolloutsRepository);
  }

  /** What a device reports (the status writer's effect), for the test to set. */
  report(deviceId: string, state: RolloutDeviceRow['state']): void {
    for (const d of this.devices.filter((x) => x.device_id === deviceId)) d.state = state;
    if (state === 'active') this.running.set(deviceId, 'v2');
  }
}

/** The broker link: records offers, cleared offers and commands; devices in `unreachable` fail. */
class FakeLink implements Pick<DeviceLink, 'sendModelOffer' | 'clearModelOffer' | 'sendModelCommand'> {
  readonly offers: ModelOffer[] = [];
  readonly cleared: string[] = [];
  readonly commands: ModelCommand[] = [];
  readonly unreachable = new Set<string>();

  sendModelOffer(offer: ModelOffer): Promise<void> {
    if (this.unreachable.has(offer.deviceId)) return Promise.reject(new Error('broker away'));
    this.offers.push(offer);
    return Promise.resolve();
  }

  clearModelOffer(deviceId: string): Promise<void> {
    this.cleared.push(deviceId);
    return Promise.resolve();
  }

  sendModelCommand(cmd: ModelCommand): Promise<void> {
    this.commands.push(cmd);
    return Promise.resolve();
  }
}

const version = (over: Partial<ModelVersionRow> = {}): ModelVersionRow =>
  ({ version: 'v2', backbone_id: 'b1', backbone_checksum: 'c1', labels: ['bread', 'milk'], artifact_sha256: 'a'.repeat(64), artifact_bytes: 5n, releasable: true, gate_reason: null, ...over }) as ModelVersionRow;

const twoStages = (over: Partial<CreateRollout> = {}): CreateRollout =>
  ({
    modelVersion: 'v2',
    target: { all: true },
    stages: [
      { percent: 25, minSoakSeconds: 60, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } },
      { percent: 100, minSoakSeconds: 0, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } },
    ],
    policy: { shadowGate: false, overrideReason: 'unit spec' },
    ...over,
  }) as CreateRollout;

const status = (deviceId: string, offerId: string, state: RolloutStatus['state'], over: Partial<RolloutStatus> = {}) => ({
  v: SCHEMA_VERSION,
  deviceId,
  offerId,
  modelVersion: 'v2',
  state,
  at: '2026-12-01T00:00:00.000Z',
  activeVersion: state === 'active' ? 'v2' : 'v1',
  ...over,
});

describe(RolloutsService.name, () => {
  let repo: FakeRollouts;
  let versions: Map<string, ModelVersionRow>;
  let link: FakeLink;
  let metrics: HubMetrics;
  let now: Date;
  let counter: number;
  let recorded: RolloutStatus[];
  let sut: RolloutsService;

  beforeAll(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  beforeEach(() => {
    repo = new FakeRollouts();
    repo.fleet = ['cam-1', 'cam-2', 'cam-3', 'cam-4'].map((id) => ({ id, site: 's1', backbone_id: 'b1' }));
    versions = new Map([['v2', version()]]);
    link = new FakeLink();
    metrics = new HubMetrics();
    now = new Date('2026-12-01T00:00:00Z');
    counter = 0;
    recorded = [];
    const models: Pick<ModelsRepository, 'findVersion'> = { findVersion: (v) => Promise.resolve(versions.get(v)) };
    const keys: Pick<SigningKeys, 'nextReleaseCounter' | 'sign' | 'signCommand'> = {
      nextReleaseCounter: () => Promise.resolve(++counter),
      sign: (fields) => ({ manifest: fields, keyId: 'k1', signature: 'sig' }) as unknown as SignedManifest,
      signCommand: (fields) => ({ v: SCHEMA_VERSION, ...fields, keyId: 'k1', signature: 'sig' }) as unknown as ModelCommand,
    };
    const statuses: Pick<RolloutStatusWriter, 'record'> = {
      record: (s) => {
        recorded.push(s);
        const d = repo.devices.find((x) => x.device_id === s.deviceId && x.rollout_id === s.offerId);
        if (!d) return Promise.resolve(null);
        repo.report(s.deviceId, s.state);
        return Promise.resolve(repo.rollouts.get(s.offerId)!.state);
      },
    };
    const events = new EventBus();
    jest.spyOn(events, 'publish').mockImplementation(() => undefined);
    sut = new RolloutsService(
      repo as unknown as RolloutsRepository,
      models as ModelsRepository,
      keys as SigningKeys,
      new DownloadTokens({ rolloutDownloadTokenSecret: 'spec-secret', dataDir: '/nonexistent' }),
      metrics,
      new RejectionRecorder(metrics),
      link as unknown as DeviceLink,
      { rolloutTickMs: 1000, rolloutOfferTtlHours: 24 } as HubConfig,
      () => now,
      events,
      statuses as RolloutStatusWriter,
    );
  });

  const offeredTo = () => link.offers.map((o) => o.deviceId).sort();

  it('refuses a version that is not registered or not releasable (naming the gate’s reason)', async () => {
    await expect(sut.create(twoStages({ modelVersion: 'v9' }), 'key:ops')).rejects.toThrow(RolloutRefusedError);
    versions.set('v2', version({ releasable: false, gate_reason: 'accuracy 0.61 below 0.8' }));
    await expect(sut.create(twoStages(), 'key:ops')).rejects.toThrow(/accuracy 0.61 below 0.8/);
    expect(repo.rollouts.size).toBe(0);
  });

  it('refuses named devices that are unknown or run another backbone, and a target that selects no device of the backbone', async () => {
    await expect(sut.create(twoStages({ target: { deviceIds: ['cam-1', 'ghost'] } }), 'key:ops')).rejects.toThrow(/unknown devices.*ghost/);
    repo.fleet[1]!.backbone_id = 'b0';
    await expect(sut.create(twoStages({ target: { deviceIds: ['cam-1', 'cam-2'] } }), 'key:ops')).rejects.toThrow(/another backbone.*cam-2 \(b0\)/);
    repo.fleet = [{ id: 'cam-9', site: 's1', backbone_id: 'b0' }];
    await expect(sut.create(twoStages(), 'key:ops')).rejects.toThrow(/selects no device that runs backbone b1/);
    expect(link.offers).toEqual([]);
  });

  it('offers the signed version to the first stage’s devices only, each with its own download token, and marks them offered', async () => {
    const view = await sut.create(twoStages(), 'key:ops');
    const first = repo.devices.filter((d) => d.stage === 0).map((d) => d.device_id);
    expect(first).toHaveLength(1);
    expect(offeredTo()).toEqual(first);
    const offer = link.offers[0]!;
    expect(offer).toMatchObject({ offerId: view.id, artifactPath: '/rollouts/artifacts/v2', signed: { manifest: { modelVersion: 'v2', releaseCounter: 1, offerId: view.id } } });
    expect(new DownloadTokens({ rolloutDownloadTokenSecret: 'spec-secret', dataDir: '' }).check(offer.downloadToken!, 'v2', now)).toEqual({ ok: true, deviceId: first[0] });
    expect(view.devices!.filter((d) => d.offeredAt !== null).map((d) => d.deviceId)).toEqual(first);
    await sut.deliver();
    expect(link.offers).toHaveLength(1); // never offered twice
  });

  it('refuses a rollout that would take a device another open rollout holds', async () => {
    await sut.create(twoStages(), 'key:ops');
    await expect(sut.create(twoStages(), 'key:ops')).rejects.toThrow(RolloutConflictError);
  });

  it('leaves a device the broker could not reach unmarked, and offers it on the next pass', async () => {
    repo.fleet = [{ id: 'cam-1', site: 's1', backbone_id: 'b1' }];
    link.unreachable.add('cam-1');
    const { id } = await sut.create(twoStages(), 'key:ops');
    expect(repo.devices[0]!.offered_at).toBeNull();
    link.unreachable.clear();
    await sut.deliver();
    expect(offeredTo()).toEqual(['cam-1']);
    expect((await sut.get(id)).devices![0]!.offeredAt).not.toBeNull();
  });

  it('promotes a stage once it soaked and its devices are active, then offers the next stage; completes after the last', async () => {
    const { id } = await sut.create(twoStages(), 'key:ops');
    const first = repo.devices.filter((d) => d.stage === 0).map((d) => d.device_id);
    for (const d of first) repo.report(d, 'active');
    now = new Date(now.getTime() + 59_000);
    await sut.tick();
    expect(repo.rollouts.get(id)!.current_stage).toBe(0); // still soaking
    now = new Date(now.getTime() + 1_000);
    await sut.tick();
    expect(repo.rollouts.get(id)!.current_stage).toBe(1);
    expect(offeredTo()).toEqual(['cam-1', 'cam-2', 'cam-3', 'cam-4']);
    for (const d of repo.devices) repo.report(d.device_id, 'active');
    await sut.tick();
    expect(repo.rollouts.get(id)!.state).toBe('completed');
  });

  it('halts a stage whose devices fail, and by default sends active devices back and cancels candidates', async () => {
    const { id } = await sut.create(twoStages({ stages: [{ percent: 100, minSoakSeconds: 0, successThreshold: 1, abort: { maxFailurePercent: 40, minDevices: 2 } }] }), 'key:ops');
    repo.report('cam-1', 'rejected');
    repo.report('cam-2', 'active');
    repo.report('cam-3', 'rejected');
    repo.report('cam-4', 'downloading');
    await sut.tick();
    expect(repo.rollouts.get(id)).toMatchObject({ state: 'halted', halt_action: 'rollback', halt_reason: expect.stringMatching(/2 of 3 reporting devices failed/) });
    expect(link.cleared.sort()).toEqual(['cam-1', 'cam-2', 'cam-3', 'cam-4']);
    expect(link.commands.map((c) => [c.deviceId, c.command]).sort()).toEqual([
      ['cam-2', 'rollback'],
      ['cam-4', 'cancel'],
    ]);
  });

  it('moves a rollout only from the states an action allows, and an abort cancels candidates but leaves active devices', async () => {
    const { id } = await sut.create(twoStages(), 'key:ops');
    await expect(sut.resume(id)).rejects.toThrow(RolloutStateError);
    await sut.pause(id);
    await expect(sut.pause(id)).rejects.toThrow(RolloutStateError);
    const first = repo.devices.find((d) => d.stage === 0)!.device_id;
    repo.report(first, 'verified');
    expect((await sut.abort(id)).state).toBe('aborted');
    expect(link.commands.map((c) => [c.deviceId, c.command])).toEqual([[first, 'cancel']]);
    await expect(sut.abort(id)).rejects.toThrow(RolloutStateError);
    expect((await sut.rollback(id)).state).toBe('rolled_back');
  });

  it('counts an offer a device refused as forged or replayed as an attack and records nothing against the rollout', async () => {
    const { id } = await sut.create(twoStages(), 'key:ops');
    const first = repo.devices.find((d) => d.stage === 0)!.device_id;
    await sut.onStatus(first, status(first, id, 'rejected', { reason: 'bad_signature' }));
    expect(recorded).toEqual([]);
    expect(await metrics.registry.metrics()).toMatch(/shelfsight_rollout_attacks_total\{reason="bad_signature"\} 1/);
    await sut.onStatus(first, status('cam-x', id, 'downloading'));
    expect(recorded).toEqual([]);
  });

  it('sends a device that activated after its rollout halted back once per command lifetime, not in a loop', async () => {
    repo.fleet = [{ id: 'cam-1', site: 's1', backbone_id: 'b1' }];
    const { id } = await sut.create(twoStages({ stages: [{ percent: 100, minSoakSeconds: 0, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } }] }), 'key:ops');
    repo.rollouts.get(id)!.state = 'halted';
    repo.rollouts.get(id)!.halt_action = 'rollback';
    await sut.onStatus('cam-1', status('cam-1', id, 'active'));
    await sut.onStatus('cam-1', status('cam-1', id, 'active')); // cannot roll back: answers active again
    expect(link.commands.map((c) => c.command)).toEqual(['rollback']);
    now = new Date(now.getTime() + 15 * 60_000);
    await sut.onBirth('cam-1');
    expect(link.commands.map((c) => c.command)).toEqual(['rollback', 'rollback']);
  });

  it('signs the manifest again before offering it when it is within an hour of expiring', async () => {
    repo.fleet = [{ id: 'cam-1', site: 's1', backbone_id: 'b1' }, { id: 'cam-2', site: 's1', backbone_id: 'b1' }];
    const { id } = await sut.create(twoStages({ stages: [{ percent: 50, minSoakSeconds: 0, successThreshold: 0, abort: { maxFailurePercent: 100, minDevices: 1 } }, { percent: 100, minSoakSeconds: 0, successThreshold: 0, abort: { maxFailurePercent: 100, minDevices: 1 } }] }), 'key:ops');
    now = new Date(now.getTime() + 23 * 3600_000 + 1);
    await sut.tick();
    expect(repo.resigned).toEqual([id]);
    expect(link.offers.map((o) => o.signed.manifest.releaseCounter)).toEqual([1, 2]);
    expect(Date.parse(link.offers[1]!.signed.manifest.expiresAt)).toBe(now.getTime() + 24 * 3600_000);
  });
});
