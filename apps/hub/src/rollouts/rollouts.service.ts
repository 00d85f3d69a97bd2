import { randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { DEFAULT_MODEL_LINE, isUnverifiedOfferStatus, labelsHash, parsePayload, RolloutStatusSchema, SCHEMA_VERSION, type SignedManifest } from '@shelfsight/contracts';
import { offerPolicyOf, resolveRolloutPolicy, storedRolloutPolicy } from '@shelfsight/contracts';
import { DEVICE_LINK, type DeviceLink } from '../broker/device-link';
import { ClusterLock } from '../cluster/cluster-lock';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { EventBus } from '../events/event-bus';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import { ModelsRepository, type ModelVersionRow } from '../models/models.repository';
import {
  DEVICE_ROLLOUT_STATES,
  type CreateRollout,
  type ListRolloutsQuery,
  type RolloutDeviceView,
  type RolloutState,
  type RolloutView,
  type StageCounts,
} from './rollout.dto';
import { RolloutConflictError, RolloutNotFoundError, RolloutRefusedError, RolloutStateError } from './rollouts.error';
import { predictedChange, type PooledShadow } from './predicted-change';
import { RolloutsRepository, type RolloutDeviceRow, type RolloutRow, type ShadowReportRow, type StageCountRow } from './rollouts.repository';
import { RolloutStatusWriter } from './rollout-status-writer';
import { DOWNLOAD_TOKEN_TTL_MS, DownloadTokens } from './download-tokens';
import { SigningKeys } from './signing-keys';
import { assignStages, decideStage, emptyCounts, stopCommand, type StopAction } from './stage-engine';

/** Injection token of the rollouts' clock (tests move time). */
export const ROLLOUT_CLOCK = Symbol('ROLLOUT_CLOCK');
export type RolloutClock = () => Date;

/** A manifest this close to its expiry is signed again before it is offered. */
const RESIGN_MARGIN_MS = 60 * 60_000;
/** A rollback or cancel command is good for this long (devices accept each nonce once). */
const COMMAND_TTL_MS = 15 * 60_000;
/** The advisory lock a delivery pass holds: one pass at a time in the whole cluster. */
const DELIVERY_LOCK_KEY = 7_361_013n;


/**
 * Fleet rollouts: picks the target's devices and their stages, signs the manifest, offers
 * the version stage by stage (retained `model-offer`), records what devices report on
 * `rollout-status`, and lets the stage engine ({@link decideStage}) promote, complete or
 * halt each running rollout on a tick that one replica at a time runs (advisory lock).
 */
@Injectable()
export class RolloutsService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger('Rollouts');
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  /** When this process last sent a stopped rollout's device back (see {@link sendBackIfStopped}). */
  private readonly sentBack = new Map<string, number>();
  /** The delivery pass in progress: passes run one after another (see {@link deliver}). */
  private delivering: Promise<void> = Promise.resolve();

  constructor(
    private readonly repo: RolloutsRepository,
    private readonly models: ModelsRepository,
    private readonly keys: SigningKeys,
    private readonly tokens: DownloadTokens,
    private readonly metrics: HubMetrics,
    private readonly rejections: RejectionRecorder,
    @Inject(DEVICE_LINK) private readonly link: DeviceLink,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    @Inject(ROLLOUT_CLOCK) private readonly now: RolloutClock,
    private readonly events: EventBus,
    private readonly statuses: RolloutStatusWriter,
    /** Serialises delivery passes across replicas; without one (a lone process) they are serialised here only. */
    @Optional() private readonly cluster?: ClusterLock,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), this.config.rolloutTickMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
  }

  // --- operator actions

  async create(input: CreateRollout, actor: string): Promise<RolloutView> {
    const version = await this.models.findVersion(input.modelVersion);
    if (!version) throw new RolloutRefusedError(`model version ${input.modelVersion} is not in the registry`);
    if (version.releasable !== true) {
      throw new RolloutRefusedError(`model version ${input.modelVersion} is not releasable: ${version.gate_reason ?? 'not evaluated by the gate'}`, { gateReason: version.gate_reason });
    }
    const found = await this.repo.targetDevices(input.target);
    if (input.target.deviceIds) {
      const known = new Set(found.map((d) => d.id));
      const unknown = input.target.deviceIds.filter((id) => !known.has(id));
      if (unknown.length > 0) throw new RolloutRefusedError(`unknown devices (never seen, not provisioned): ${unknown.slice(0, 20).join(', ')}`, { unknownDevices: unknown });
      const foreign = found.filter((d) => d.backbone_id !== null && d.backbone_id !== version.backbone_id);
      if (foreign.length > 0) {
        throw new RolloutRefusedError(`devices run another backbone than ${version.backbone_id}: ${foreign.slice(0, 20).map((d) => `${d.id} (${d.backbone_id})`).join(', ')}`);
      }
    }
    // Sites and all: the devices whose backbone can run the head (or not known yet).
    const eligible = found.filter((d) => d.backbone_id === null || d.backbone_id === version.backbone_id);
    const id = `ro_${randomBytes(8).toString('hex')}`;
    const assigned = assignStages(
      id,
      eligible.map((d) => d.id),
      input.stages.map((s) => s.percent),
      input.target.percent,
    );
    if (assigned.length === 0) throw new RolloutRefusedError(`the target selects no device that runs backbone ${version.backbone_id}`);
    const policy = resolveRolloutPolicy(input.policy);
    const now = this.now();
    const signed = await this.signFor(version, now, id);
    const { conflict } = await this.repo.insertRollout(
      {
        id,
        model_version: version.version,
        target: input.target,
        stages: input.stages,
        policy,
        state: 'running',
        current_stage: 0,
        stage_started: input.stages.map((_, i) => (i === 0 ? now.toISOString() : null)),
        halt_reason: null,
        halt_action: null,
        signed,
        created_by: actor,
      },
      assigned,
    );
    if (conflict) throw new RolloutConflictError(conflict.rolloutId, conflict.deviceId);
    this.changed(id);
    this.log.log(`rollout ${id} of ${version.version} to ${assigned.length} devices in ${input.stages.length} stages, by ${actor}`);
    const off = [policy.shadowGate === false && 'shadow gate', policy.health === false && 'health watch'].filter(Boolean);
    if (off.length > 0) this.log.warn(`rollout ${id}: ${off.join(' and ')} turned off by ${actor}: ${policy.overrideReason ?? ''}`);
    await this.deliver();
    return this.get(id);
  }

  async list(q: ListRolloutsQuery): Promise<RolloutView[]> {
    const rows = await this.repo.listRollouts(q);
    const counts = await this.repo.stageCounts(rows.map((r) => r.id));
    return rows.map((r) => toView(r, counts.filter((c) => c.rollout_id === r.id)));
  }

  async get(id: string): Promise<RolloutView> {
    const row = await this.row(id);
    const [counts, devices] = await Promise.all([this.repo.stageCounts([id]), this.repo.devicesOf(id)]);
    const view = toView(row, counts);
    const shadows = (stage: (s: number) => boolean) => devices.filter((d) => d.shadow !== null && stage(d.stage)).map((d) => d.shadow!);
    return {
      ...view,
      stages: view.stages.map((s) => ({ ...s, predictedChange: predictedChange(shadows((i) => i === s.index)) })),
      predictedChange: predictedChange(shadows((i) => i <= row.current_stage)),
      devices: devices.map(toDeviceView),
    };
  }

  async pause(id: string): Promise<RolloutView> {
    await this.move(id, 'pause', ['running'], 'paused');
    return this.get(id);
  }

  async resume(id: string): Promise<RolloutView> {
    await this.move(id, 'resume', ['paused'], 'running');
    await this.deliver();
    return this.get(id);
  }

  /** Stop delivering: later stages never get the version, candidates are cancelled; devices that activated it keep it. */
  async abort(id: string): Promise<RolloutView> {
    await this.move(id, 'abort', ['running', 'paused', 'halted'], 'aborted', true);
    await this.stopDevices(id, 'abort');
    return this.get(id);
  }

  /** Every device of the rollout back to the version it ran before (candidates are cancelled). */
  async rollback(id: string): Promise<RolloutView> {
    await this.move(id, 'rollback', ['running', 'paused', 'halted', 'completed', 'aborted'], 'rolled_back', true);
    await this.stopDevices(id, 'rollback');
    return this.get(id);
  }

  // --- devices

  /** A `rollout-status` payload: recorded against the device's offer; malformed ones are counted, never thrown. */
  async onStatus(topicDeviceId: string, payload: unknown): Promise<void> {
    const parsed = parsePayload(RolloutStatusSchema, payload);
    if (!parsed.ok) return this.rejections.record('rollout-status', parsed.reason, topicDeviceId, parsed.message);
    const s = parsed.value;
    if (s.deviceId !== topicDeviceId) return this.rejections.record('rollout-status', 'device_mismatch', topicDeviceId, `payload names device ${s.deviceId}`);
    if (isUnverifiedOfferStatus(s)) {
      // The device refused an offer that is not what this hub signed: an attack, never a failure of the rollout whose id it carries.
      this.metrics.rolloutAttacks.inc({ reason: s.reason ?? 'unknown' });
      this.log.warn(`device ${s.deviceId} refused a forged or replayed offer naming ${s.offerId} (${s.reason}${s.detail ? `: ${s.detail}` : ''}); not counted against the rollout`);
      return;
    }
    const rolloutState = await this.statuses.record(s);
    this.metrics.rolloutStatuses.inc({ state: rolloutState ? s.state : 'unknown' });
    if (!rolloutState) return;
    this.changed(s.offerId);
    if (s.state === 'rejected' || s.state === 'rolled_back') {
      this.log.warn(`rollout ${s.offerId}: device ${s.deviceId} ${s.state} ${s.modelVersion} (${s.reason ?? ''}${s.detail ? `: ${s.detail}` : ''})`);
    }
    // Activated after its rollout stopped (its shadow run ended as the cancel was on its way): send it back too.
    if (s.state === 'active' && (rolloutState === 'halted' || rolloutState === 'rolled_back')) await this.sendBackIfStopped(s.deviceId);
  }

  /**
   * A device still running the version of a rollout that halted (onHalt: rollback) or was
   * rolled back gets `rollback`, at most once per command lifetime from this process: a device
   * that cannot roll back (no previous head kept) answers `active` again, which must not start
   * a loop of commands.
   */
  private async sendBackIfStopped(deviceId: string): Promise<void> {
    const stopped = await this.repo.stoppedOfferFor(deviceId);
    if (!stopped) return;
    const key = `${stopped.rollout_id}\u0000${deviceId}`;
    const now = this.now().getTime();
    for (const [k, at] of this.sentBack) if (now - at >= COMMAND_TTL_MS) this.sentBack.delete(k);
    if (this.sentBack.has(key)) return;
    this.sentBack.set(key, now);
    await this.stopDevices(stopped.rollout_id, 'rollback', [deviceId]);
  }

  /** A device (re)joined: offer it again what its open rollout step holds (besides the retained offer). */
  async onBirth(deviceId: string): Promise<void> {
    // Offline when its rollout halted (or was rolled back): it still runs the version; send it back now.
    await this.sendBackIfStopped(deviceId);
    const open = await this.repo.openOfferFor(deviceId);
    if (!open || open.state === 'active' || open.state === 'rejected' || open.state === 'rolled_back') return;
    const row = await this.repo.findRollout(open.rollout_id);
    if (row) await this.offerTo(row, [deviceId]);
  }

  // --- stage engine

  /** One pass of the stage engine (the interval calls it; tests may too). Never throws. */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.runTick()
      .catch((err: unknown) => this.log.warn(`stage engine tick failed: ${(err as Error).message}`))
      .finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    const now = this.now();
    const halted = await this.repo.withEngineLock(async (repo) => {
      const running = await repo.runningRollouts();
      if (running.length === 0) return [];
      const counts = await repo.stageCounts(running.map((r) => r.id));
      // After the counts: a device counted active here has its shadow run stored (one statement writes both).
      const gated = running.filter((r) => storedRolloutPolicy(r.policy).shadowGate !== false).map((r) => r.id);
      const shadows = gated.length > 0 ? await repo.shadowReports(gated) : [];
      const stopped: string[] = [];
      for (const r of running) {
        const perStage = stageCountsOf(r, counts.filter((c) => c.rollout_id === r.id));
        const startedAt = new Date(r.stage_started[r.current_stage] ?? r.created_at.toISOString());
        const policy = storedRolloutPolicy(r.policy);
        const d = decideStage(
          { stages: r.stages, currentStage: r.current_stage, stageStartedAt: startedAt, counts: perStage, shadowGate: policy.shadowGate, predicted: predictedChange(offeredShadows(r, shadows)) },
          now,
        );
        if (d.kind !== 'wait') this.changed(r.id);
        if (d.kind === 'promote') {
          if (await repo.promote(r.id, r.current_stage, d.to, now)) {
            this.log.log(`rollout ${r.id}: stage ${r.current_stage + 1} passed (${describe(perStage[r.current_stage]!)}); stage ${d.to + 1} of ${r.stages.length} starts`);
          }
        } else if (d.kind === 'complete') {
          if (await repo.transition(r.id, ['running'], 'completed', { close: true })) {
            this.log.log(`rollout ${r.id} of ${r.model_version} completed (${describe(sumCounts(perStage))})`);
          }
        } else if (d.kind === 'halt') {
          if (await repo.transition(r.id, ['running'], 'halted', { haltReason: d.reason, haltAction: policy.onHalt })) {
            this.log.warn(`rollout ${r.id} of ${r.model_version} halted: ${d.reason} (${policy.onHalt === 'rollback' ? 'its devices go back to their previous version' : 'its devices keep the version'})`);
            stopped.push(r.id);
          }
        }
      }
      return stopped;
    });
    for (const id of halted ?? []) await this.stopDevices(id, 'halt');
    await this.deliver();
  }

  // --- delivery

  /** Offer the version to every device whose stage started and that has not been offered it. */
  deliver(): Promise<void> {
    // One pass at a time: a pass started while another is publishing (a POST and the tick, say,
    // on this replica or another) would find the same devices not yet marked offered and offer them twice.
    const pass = this.delivering.then(() => (this.cluster ? this.cluster.run(DELIVERY_LOCK_KEY, () => this.deliverPass()) : this.deliverPass()));
    this.delivering = pass.catch(() => undefined);
    return pass;
  }

  private async deliverPass(): Promise<void> {
    for (;;) {
      const due = await this.repo.devicesToOffer();
      if (due.length === 0) return;
      const byRollout = new Map<string, string[]>();
      for (const d of due) byRollout.set(d.rollout_id, [...(byRollout.get(d.rollout_id) ?? []), d.device_id]);
      let offered = 0;
      for (const [rolloutId, deviceIds] of byRollout) {
        const row = await this.repo.findRollout(rolloutId);
        if (!row) continue;
        const sent = await this.offerTo(row, deviceIds);
        await this.repo.markOffered(rolloutId, sent);
        offered += sent.length;
        if (sent.length < deviceIds.length) return; // the broker is away: the next tick tries again
      }
      if (offered === 0) return;
    }
  }

  /** Publish the rollout's offer to devices (retained); returns the devices it reached the broker for. */
  private async offerTo(row: RolloutRow, deviceIds: string[]): Promise<string[]> {
    const signed = await this.freshSigned(row);
    const now = this.now();
    const offeredAt = now.toISOString();
    // The download token lives no longer than the manifest it travels with.
    const tokenExpiry = new Date(Math.min(now.getTime() + DOWNLOAD_TOKEN_TTL_MS, Date.parse(signed.manifest.expiresAt)));
    const sent: string[] = [];
    await Promise.all(
      deviceIds.map(async (deviceId) => {
        try {
          await this.link.sendModelOffer({
            v: SCHEMA_VERSION,
            deviceId,
            offerId: row.id,
            signed,
            artifactPath: artifactPathOf(row.model_version),
            offeredAt,
            policy: offerPolicyOf(storedRolloutPolicy(row.policy)),
            downloadToken: this.tokens.issue(deviceId, row.model_version, tokenExpiry),
          });
          this.metrics.rolloutOffers.inc();
          sent.push(deviceId);
        } catch (err) {
          this.log.warn(`rollout ${row.id}: offer to ${deviceId} not sent: ${(err as Error).message}`);
        }
      }),
    );
    return sent;
  }

  /** The rollout's signed manifest, signed again (new release counter) when it is about to expire. */
  private async freshSigned(row: RolloutRow): Promise<SignedManifest> {
    const now = this.now();
    if (Date.parse(row.signed.manifest.expiresAt) - now.getTime() > RESIGN_MARGIN_MS) return row.signed;
    const version = await this.models.findVersion(row.model_version);
    if (!version) return row.signed;
    const signed = await this.signFor(version, now, row.id);
    await this.repo.replaceSigned(row.id, signed);
    row.signed = signed;
    return signed;
  }

  private async signFor(version: ModelVersionRow, now: Date, offerId: string): Promise<SignedManifest> {
    const hash = labelsHash(version.labels);
    const counter = await this.keys.nextReleaseCounter(version.backbone_id, DEFAULT_MODEL_LINE);
    return this.keys.sign({
      modelVersion: version.version,
      offerId,
      modelLine: DEFAULT_MODEL_LINE,
      releaseCounter: counter,
      backbone: { id: version.backbone_id, checksum: version.backbone_checksum },
      labelsHash: hash,
      artifact: { sha256: version.artifact_sha256, length: Number(version.artifact_bytes) },
      issuedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.config.rolloutOfferTtlHours * 3600_000).toISOString(),
    });
  }

  /**
   * A rollout stopped: clear the retained offer of every device it was offered to (a
   * reconnect must not bring it back), cancel it where it is still a candidate, and send
   * `rollback` where it is active on an operator's rollback, or on a halt when the policy says
   * `onHalt: rollback` (the default): see {@link stopCommand}.
   */
  private async stopDevices(id: string, action: StopAction, only?: readonly string[]): Promise<void> {
    const row = await this.row(id);
    const { onHalt } = storedRolloutPolicy(row.policy);
    const devices = (await this.repo.devicesOf(id)).filter((d) => d.offered_at !== null && (!only || only.includes(d.device_id)));
    const issuedAt = this.now().toISOString();
    const expiresAt = new Date(this.now().getTime() + COMMAND_TTL_MS).toISOString();
    let cancelled = 0;
    let rolledBack = 0;
    await Promise.all(
      devices.map(async (d) => {
        try {
          await this.link.clearModelOffer(d.device_id);
          const command = stopCommand(action, onHalt, d.state);
          if (!command) return;
          await this.link.sendModelCommand(this.keys.signCommand({ deviceId: d.device_id, offerId: id, command, modelVersion: row.model_version, issuedAt, expiresAt }));
          this.metrics.rolloutCommands.inc({ command });
          if (command === 'cancel') cancelled += 1;
          else rolledBack += 1;
        } catch (err) {
          this.log.warn(`rollout ${id}: ${action} of ${d.device_id} not sent: ${(err as Error).message}`);
        }
      }),
    );
    this.log.log(`rollout ${id} ${action}: ${devices.length} offers cleared, ${cancelled} candidates cancelled, ${rolledBack} devices told to roll back`);
  }

  private async move(id: string, action: string, from: readonly RolloutState[], to: RolloutState, close = false): Promise<void> {
    const row = await this.row(id);
    if (!from.includes(row.state) || !(await this.repo.transition(id, from, to, { close }))) {
      const now = await this.row(id);
      throw new RolloutStateError(id, action, now.state);
    }
    this.log.log(`rollout ${id}: ${row.state} -> ${to}`);
    this.changed(id);
  }

  /** Tell the console's live screens (GET /events) that a rollout changed. */
  private changed(id: string): void {
    this.events.publish('rollout', { id, at: this.now().toISOString() }, { coalesce: `rollout:${id}` });
  }

  private async row(id: string): Promise<RolloutRow> {
    const row = await this.repo.findRollout(id);
    if (!row) throw new RolloutNotFoundError(id);
    return row;
  }
}

/** Where a device downloads a version's artifact (relative to the hub's HTTP base URL). */
export function artifactPathOf(modelVersion: string): string {
  return `/rollouts/artifacts/${encodeURIComponent(modelVersion)}`;
}

/** The shadow runs of a rollout's devices in the stages offered so far (what its current stage is judged by). */
function offeredShadows(r: RolloutRow, rows: readonly ShadowReportRow[]): PooledShadow[] {
  return rows.filter((x) => x.rollout_id === r.id && x.stage <= r.current_stage).map((x) => x.shadow);
}

function stageCountsOf(r: RolloutRow, rows: StageCountRow[]): StageCounts[] {
  const out = r.stages.map(() => emptyCounts());
  for (const c of rows) {
    const s = out[c.stage];
    if (s) s[c.state] += c.n;
  }
  return out;
}

function sumCounts(list: StageCounts[]): StageCounts {
  const out = emptyCounts();
  for (const c of list) for (const k of DEVICE_ROLLOUT_STATES) out[k] += c[k];
  return out;
}

function describe(c: StageCounts): string {
  return DEVICE_ROLLOUT_STATES.filter((k) => c[k] > 0)
    .map((k) => `${c[k]} ${k}`)
    .join(', ') || 'no devices';
}

function toView(r: RolloutRow, counts: StageCountRow[]): RolloutView {
  const perStage = stageCountsOf(r, counts);
  return {
    id: r.id,
    modelVersion: r.model_version,
    state: r.state,
    haltReason: r.halt_reason,
    target: r.target,
    policy: storedRolloutPolicy(r.policy),
    haltAction: r.halt_action,
    currentStage: r.current_stage,
    stages: r.stages.map((s, index) => ({
      ...s,
      index,
      state:
        index < r.current_stage || (index === r.current_stage && r.state === 'completed')
          ? 'passed'
          : index === r.current_stage
            ? r.state === 'halted' || r.state === 'aborted' || r.state === 'rolled_back'
              ? 'halted'
              : 'running'
            : 'pending',
      startedAt: r.stage_started[index] ?? null,
      devices: DEVICE_ROLLOUT_STATES.reduce((n, k) => n + perStage[index]![k], 0),
      counts: perStage[index]!,
    })),
    counts: sumCounts(perStage),
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
  };
}

function toDeviceView(d: RolloutDeviceRow): RolloutDeviceView {
  return {
    deviceId: d.device_id,
    stage: d.stage,
    state: d.state,
    reason: d.reason,
    detail: d.detail,
    activeVersion: d.active_version,
    previousVersion: d.previous_version,
    shadow: d.shadow,
    health: d.health,
    offeredAt: d.offered_at?.toISOString() ?? null,
    statusAt: d.status_at?.toISOString() ?? null,
  };
}
