import { Inject, Injectable } from '@nestjs/common';
import { Prisma, type PrismaClient } from '@shelfsight/db';
import type { HealthStats, OnHalt, RolloutStatus, ShadowStats, SignedManifest } from '@shelfsight/contracts';
import type { PooledShadow } from './predicted-change';
import { PrismaService } from '../prisma/prisma.service';
import type { DeviceRolloutState, RolloutStage, RolloutState, RolloutTarget } from './rollout.dto';

/** The SQL a repository needs: the hub's client or one interactive transaction of it. */
type Db = Pick<PrismaClient, '$queryRaw' | '$executeRaw'>;

export interface RolloutRow {
  id: string;
  model_version: string;
  target: RolloutTarget;
  stages: RolloutStage[];
  /** As stored: a `RolloutPolicy`, or (rollouts created before defaults) an offer policy or null; read it with `storedRolloutPolicy`. */
  policy: unknown;
  state: RolloutState;
  current_stage: number;
  stage_started: Array<string | null>;
  halt_reason: string | null;
  /** What the stage engine's halt did to the devices active on the version (null: not halted by it). */
  halt_action: OnHalt | null;
  signed: SignedManifest;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

export interface RolloutDeviceRow {
  rollout_id: string;
  device_id: string;
  stage: number;
  state: DeviceRolloutState;
  reason: string | null;
  detail: string | null;
  previous_version: string | null;
  active_version: string | null;
  shadow: ShadowStats | null;
  health: HealthStats | null;
  offered_at: Date | null;
  status_at: Date | null;
}

export interface TargetDeviceRow {
  id: string;
  site: string | null;
  backbone_id: string | null;
}

export interface ShadowReportRow {
  rollout_id: string;
  stage: number;
  shadow: PooledShadow;
}

export interface StageCountRow {
  rollout_id: string;
  stage: number;
  state: DeviceRolloutState;
  n: number;
}

/** Key of the advisory lock the stage engine ticks under (one replica at a time). */
const ENGINE_LOCK_KEY = 7_361_012;
/** SQL of rollouts: rollouts and their devices (release keys and counters: release-keys.repository.ts). */
@Injectable()
export class RolloutsRepository {
  constructor(@Inject(PrismaService) private readonly db: Db & Pick<PrismaClient, '$transaction'>) {}

  // --- targets

  /** Devices a target names: known from a birth or provisioned (a credential); `sites` and `all` only from the fleet table. */
  async targetDevices(target: RolloutTarget): Promise<TargetDeviceRow[]> {
    if (target.deviceIds) {
      return this.db.$queryRaw<TargetDeviceRow[]>`
        SELECT ids.id, d.site, d.backbone_id FROM unnest(${target.deviceIds}::text[]) AS ids(id)
        LEFT JOIN devices d ON d.id = ids.id
        WHERE d.id IS NOT NULL OR EXISTS (SELECT 1 FROM device_credentials c WHERE c.device_id = ids.id)`;
    }
    return this.db.$queryRaw<TargetDeviceRow[]>`
      SELECT id, site, backbone_id FROM devices
      WHERE ${target.sites ? Prisma.sql`site = ANY(${target.sites}::text[])` : Prisma.sql`TRUE`}
      ORDER BY id`;
  }

  // --- rollouts

  /**
   * Insert a rollout and its devices, unless one of them is in another unfinished rollout:
   * then nothing is written and the holder is returned.
   */
  async insertRollout(r: Omit<RolloutRow, 'created_at' | 'updated_at' | 'finished_at'>, devices: Array<{ deviceId: string; stage: number }>): Promise<{ conflict?: { rolloutId: string; deviceId: string } }> {
    const ids = devices.map((d) => d.deviceId);
    const stages = devices.map((d) => d.stage);
    try {
      return await this.db.$transaction(async (tx) => {
        const holder = await findHolder(tx, ids);
        if (holder) return { conflict: holder };
        await tx.$executeRaw`
          INSERT INTO rollouts (id, model_version, target, stages, policy, state, current_stage, stage_started, halt_reason, signed, created_by)
          VALUES (${r.id}, ${r.model_version}, ${JSON.stringify(r.target)}::jsonb, ${JSON.stringify(r.stages)}::jsonb,
            ${r.policy ? JSON.stringify(r.policy) : null}::jsonb, ${r.state}, ${r.current_stage}, ${JSON.stringify(r.stage_started)}::jsonb,
            ${r.halt_reason}, ${JSON.stringify(r.signed)}::jsonb, ${r.created_by})`;
        await tx.$executeRaw`
          INSERT INTO rollout_devices (rollout_id, device_id, stage)
          SELECT ${r.id}, d.id, d.stage FROM unnest(${ids}::text[], ${stages}::int[]) AS d(id, stage)`;
        return {};
      });
    } catch (err) {
      // Another rollout took a device between the check and the insert.
      if (isUniqueViolation(err)) {
        const holder = await findHolder(this.db, ids);
        if (holder) return { conflict: holder };
      }
      throw err;
    }
  }

  async findRollout(id: string): Promise<RolloutRow | undefined> {
    const rows = await this.db.$queryRaw<RolloutRow[]>`SELECT * FROM rollouts WHERE id = ${id}`;
    return rows[0];
  }

  listRollouts(q: { state?: RolloutState; limit: number }): Promise<RolloutRow[]> {
    return this.db.$queryRaw<RolloutRow[]>`
      SELECT * FROM rollouts WHERE ${q.state ? Prisma.sql`state = ${q.state}` : Prisma.sql`TRUE`}
      ORDER BY created_at DESC, id DESC LIMIT ${q.limit}`;
  }

  runningRollouts(): Promise<RolloutRow[]> {
    return this.db.$queryRaw<RolloutRow[]>`SELECT * FROM rollouts WHERE state = 'running' ORDER BY created_at`;
  }

  stageCounts(rolloutIds: string[]): Promise<StageCountRow[]> {
    return this.db.$queryRaw<StageCountRow[]>`
      SELECT rollout_id, stage, state, count(*)::int AS n FROM rollout_devices WHERE rollout_id = ANY(${rolloutIds}::text[])
      GROUP BY rollout_id, stage, state`;
  }

  /**
   * The shadow runs the devices of these rollouts reported in the stages offered so far (one per
   * device: its latest), with their stage: only what the pooling reads (no histograms).
   */
  shadowReports(rolloutIds: string[]): Promise<ShadowReportRow[]> {
    return this.db.$queryRaw<ShadowReportRow[]>`
      SELECT d.rollout_id, d.stage,
        jsonb_strip_nulls(jsonb_build_object('frames', d.shadow->'frames', 'agreement', d.shadow->'agreement', 'categories', d.shadow->'categories', 'changes', d.shadow->'changes')) AS shadow
      FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
      WHERE d.rollout_id = ANY(${rolloutIds}::text[]) AND d.shadow IS NOT NULL AND d.stage <= r.current_stage`;
  }

  /**
   * The device's rollout that stopped and must still take the version back from it: halted with
   * `halt_action = 'rollback'`, or rolled back by the operator, while the device last said it
   * runs the version and the fleet table agrees (it was offline when the command went out).
   */
  async stoppedOfferFor(deviceId: string): Promise<{ rollout_id: string; state: DeviceRolloutState } | undefined> {
    const rows = await this.db.$queryRaw<Array<{ rollout_id: string; state: DeviceRolloutState }>>`
      SELECT d.rollout_id, d.state FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
        JOIN devices x ON x.id = d.device_id AND x.model_version = r.model_version
      WHERE d.device_id = ${deviceId} AND d.offered_at IS NOT NULL AND d.state = 'active'
        AND ((r.state = 'halted' AND r.halt_action = 'rollback') OR r.state = 'rolled_back')
      ORDER BY r.updated_at DESC LIMIT 1`;
    return rows[0];
  }

  devicesOf(rolloutId: string): Promise<RolloutDeviceRow[]> {
    return this.db.$queryRaw<RolloutDeviceRow[]>`
      SELECT rollout_id, device_id, stage, state, reason, detail, previous_version, active_version, shadow, health, offered_at, status_at
      FROM rollout_devices WHERE rollout_id = ${rolloutId} ORDER BY stage, device_id`;
  }

  /** Move a rollout from one of `from` to `to`; false when it was not in one of them (another request or replica moved it). */
  async transition(id: string, from: readonly RolloutState[], to: RolloutState, opts: { haltReason?: string; haltAction?: OnHalt; close?: boolean } = {}): Promise<boolean> {
    const finished = to === 'completed' || to === 'aborted' || to === 'rolled_back';
    const n = await this.db.$executeRaw`
      UPDATE rollouts SET state = ${to}, updated_at = now(),
        halt_reason = COALESCE(${opts.haltReason ?? null}, halt_reason),
        halt_action = COALESCE(${opts.haltAction ?? null}, halt_action),
        finished_at = CASE WHEN ${finished} THEN now() ELSE finished_at END
      WHERE id = ${id} AND state = ANY(${[...from]}::text[])`;
    if (n > 0 && opts.close) await this.db.$executeRaw`UPDATE rollout_devices SET open = false WHERE rollout_id = ${id}`;
    return n > 0;
  }

  async promote(id: string, from: number, to: number, at: Date): Promise<boolean> {
    const n = await this.db.$executeRaw`
      UPDATE rollouts SET current_stage = ${to}, updated_at = now(),
        stage_started = jsonb_set(stage_started, ARRAY[${String(to)}], to_jsonb(${at.toISOString()}::text))
      WHERE id = ${id} AND state = 'running' AND current_stage = ${from}`;
    return n > 0;
  }

  async replaceSigned(id: string, signed: SignedManifest): Promise<void> {
    await this.db.$executeRaw`UPDATE rollouts SET signed = ${JSON.stringify(signed)}::jsonb, updated_at = now() WHERE id = ${id}`;
  }

  /** Devices of running rollouts whose stage has started and that were never offered the version. */
  devicesToOffer(limit = 5000): Promise<Array<{ rollout_id: string; device_id: string }>> {
    return this.db.$queryRaw<Array<{ rollout_id: string; device_id: string }>>`
      SELECT d.rollout_id, d.device_id FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
      WHERE r.state = 'running' AND d.stage <= r.current_stage AND d.offered_at IS NULL
      ORDER BY r.created_at, d.stage, d.device_id LIMIT ${limit}`;
  }

  async markOffered(rolloutId: string, deviceIds: string[]): Promise<void> {
    await this.db.$executeRaw`
      UPDATE rollout_devices SET offered_at = COALESCE(offered_at, now()), updated_at = now(),
        state = CASE WHEN state = 'pending' THEN 'offered' ELSE state END
      WHERE rollout_id = ${rolloutId} AND device_id = ANY(${deviceIds}::text[])`;
  }

  /** The device's unfinished rollout whose stage reached it, if any (re-offer at its birth). */
  async openOfferFor(deviceId: string): Promise<{ rollout_id: string; state: DeviceRolloutState } | undefined> {
    const rows = await this.db.$queryRaw<Array<{ rollout_id: string; state: DeviceRolloutState }>>`
      SELECT d.rollout_id, d.state FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
      WHERE d.device_id = ${deviceId} AND d.open AND r.state = 'running' AND d.stage <= r.current_stage AND d.offered_at IS NOT NULL
      LIMIT 1`;
    return rows[0];
  }

  /**
   * Record devices' statuses for their offers, many in one statement; for each status, whether
   * the hub made that offer to that device (false: nothing recorded). Statuses may arrive out of
   * order (handlers run concurrently, batches overlap): an older one never overwrites a newer,
   * and of two with the same time the later step wins. Also sets each device's running version
   * (from its newest status here). For each status: the state of the rollout it was recorded
   * against, or null when the hub made no such offer to that device (nothing recorded).
   */
  async recordStatuses(statuses: readonly RolloutStatus[]): Promise<Array<RolloutState | null>> {
    const merged = mergeStatuses(statuses);
    const col = <T>(f: (m: MergedStatus) => T) => merged.map(f);
    const rows = await this.db.$queryRaw<Array<{ rollout_id: string; device_id: string; model_version: string; rollout_state: RolloutState }>>`
      WITH s AS (
        SELECT * FROM unnest(
          ${col((m) => m.offerId)}::text[], ${col((m) => m.deviceId)}::text[], ${col((m) => m.modelVersion)}::text[],
          ${col((m) => m.state)}::text[], ${col((m) => m.reason)}::text[], ${col((m) => m.detail)}::text[],
          ${col((m) => m.activeVersion)}::text[], ${col((m) => m.previousVersion)}::text[],
          ${col((m) => m.shadow)}::text[], ${col((m) => m.health)}::text[],
          ${col((m) => m.firstAt)}::text[], ${col((m) => m.lastAt)}::text[])
          AS s(offer_id, device_id, model_version, state, reason, detail, active_version, previous_version, shadow, health, first_at, last_at)
      ), upd AS (
        UPDATE rollout_devices d SET
          state = CASE WHEN ${NEWER} THEN s.state ELSE d.state END,
          reason = CASE WHEN ${NEWER} THEN s.reason ELSE d.reason END,
          detail = CASE WHEN ${NEWER} THEN s.detail ELSE d.detail END,
          active_version = CASE WHEN ${NEWER} THEN s.active_version ELSE d.active_version END,
          previous_version = COALESCE(d.previous_version, s.previous_version),
          shadow = COALESCE(s.shadow::jsonb, d.shadow),
          health = COALESCE(s.health::jsonb, d.health),
          offered_at = COALESCE(d.offered_at, s.first_at::timestamptz),
          status_at = GREATEST(COALESCE(d.status_at, s.last_at::timestamptz), s.last_at::timestamptz),
          updated_at = now()
        FROM s JOIN rollouts r ON r.id = s.offer_id AND r.model_version = s.model_version
        WHERE d.rollout_id = s.offer_id AND d.device_id = s.device_id
        RETURNING d.rollout_id, d.device_id, r.model_version, r.state AS rollout_state
      ), dev AS (
        UPDATE devices x SET model_version = v.active_version
        FROM (SELECT DISTINCT ON (device_id) device_id, active_version FROM s ORDER BY device_id, last_at::timestamptz DESC) v
        WHERE x.id = v.device_id AND x.model_version IS DISTINCT FROM v.active_version
      )
      SELECT rollout_id, device_id, model_version, rollout_state FROM upd`;
    const known = new Map(rows.map((r) => [statusKey(r.rollout_id, r.device_id, r.model_version), r.rollout_state]));
    return statuses.map((st) => known.get(statusKey(st.offerId, st.deviceId, st.modelVersion)) ?? null);
  }

  /**
   * What an artifact download needs to know of a device, in one query: its credential
   * (provisioned and enabled?) and whether an unfinished rollout of the version reached it.
   */
  async artifactAccess(deviceId: string, modelVersion: string): Promise<{ credential: 'enabled' | 'disabled' | 'none'; targeted: boolean }> {
    const rows = await this.db.$queryRaw<Array<{ credential: 'enabled' | 'disabled' | null; targeted: boolean }>>`
      SELECT (SELECT CASE WHEN c.disabled THEN 'disabled' ELSE 'enabled' END FROM device_credentials c WHERE c.device_id = ${deviceId}) AS credential,
        EXISTS (
          SELECT 1 FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
          WHERE d.device_id = ${deviceId} AND d.open AND r.state IN ('running', 'paused') AND r.model_version = ${modelVersion} AND d.stage <= r.current_stage
        ) AS targeted`;
    const row = rows[0];
    return { credential: row?.credential ?? 'none', targeted: row?.targeted === true };
  }

  /** Run `fn` with the stage engine's lock, in one transaction; undefined when another replica holds the lock. */
  async withEngineLock<T>(fn: (repo: RolloutsRepository) => Promise<T>): Promise<T | undefined> {
    return this.db.$transaction(
      async (tx) => {
        const rows = await tx.$queryRaw<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(${ENGINE_LOCK_KEY}::bigint) AS locked`;
        if (!rows[0]?.locked) return undefined;
        return fn(new RolloutsRepository(tx as unknown as Db & Pick<PrismaClient, '$transaction'>));
      },
      { timeout: 30_000, maxWait: 30_000 },
    );
  }
}

/** The steps of a device's rollout, in order: of two statuses at the same time, the later step wins. */
const STEP_ORDER = ['pending', 'offered', 'downloading', 'verified', 'shadowing', 'active', 'rejected', 'rolled_back'];
/** A batch's status (`s`, merged per device and offer) is newer than what the row holds (`d`). */
const NEWER = Prisma.sql`(d.status_at IS NULL OR d.status_at < s.last_at::timestamptz
  OR (d.status_at = s.last_at::timestamptz AND array_position(${STEP_ORDER}::text[], s.state) >= array_position(${STEP_ORDER}::text[], d.state)))`;

/** One device's statuses for one offer in a batch, as one row: the newest step, the earliest and latest times. */
interface MergedStatus {
  offerId: string;
  deviceId: string;
  modelVersion: string;
  state: string;
  reason: string | null;
  detail: string | null;
  activeVersion: string;
  /** The version the device ran before the offer: its first status that names another active version. */
  previousVersion: string | null;
  shadow: string | null;
  health: string | null;
  firstAt: string;
  lastAt: string;
}

const statusKey = (offerId: string, deviceId: string, modelVersion: string) => JSON.stringify([offerId, deviceId, modelVersion]);

/** Fold a batch's statuses per (offer, device, version), as applying them one by one in time order would. */
export function mergeStatuses(statuses: readonly RolloutStatus[]): MergedStatus[] {
  const rank = (s: RolloutStatus): [number, number] => [Date.parse(s.at), STEP_ORDER.indexOf(s.state)];
  const before = (a: RolloutStatus, b: RolloutStatus) => {
    const [ta, sa] = rank(a);
    const [tb, sb] = rank(b);
    return ta < tb || (ta === tb && sa < sb);
  };
  const groups = new Map<string, RolloutStatus[]>();
  for (const s of statuses) {
    const k = statusKey(s.offerId, s.deviceId, s.modelVersion);
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  return [...groups.values()].map((group) => {
    const ordered = [...group].sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
    const first = ordered[0]!;
    const newest = ordered[ordered.length - 1]!;
    const lastWith = <T>(f: (s: RolloutStatus) => T | undefined) => ordered.map(f).filter((v) => v !== undefined).pop();
    const shadow = lastWith((s) => s.shadow);
    const health = lastWith((s) => s.health);
    return {
      offerId: newest.offerId,
      deviceId: newest.deviceId,
      modelVersion: newest.modelVersion,
      state: newest.state,
      reason: newest.reason ?? null,
      detail: newest.detail ?? null,
      activeVersion: newest.activeVersion,
      previousVersion: ordered.find((s) => s.activeVersion !== s.modelVersion)?.activeVersion ?? null,
      shadow: shadow ? JSON.stringify(shadow) : null,
      health: health ? JSON.stringify(health) : null,
      firstAt: new Date(first.at).toISOString(),
      lastAt: new Date(newest.at).toISOString(),
    };
  });
}

async function findHolder(db: Db, ids: string[]): Promise<{ rolloutId: string; deviceId: string } | undefined> {
  const rows = await db.$queryRaw<Array<{ rollout_id: string; device_id: string }>>`
    SELECT rollout_id, device_id FROM rollout_devices WHERE open AND device_id = ANY(${ids}::text[]) ORDER BY device_id LIMIT 1`;
  return rows[0] ? { rolloutId: rows[0].rollout_id, deviceId: rows[0].device_id } : undefined;
}

function isUniqueViolation(err: unknown): boolean {
  const text = `${(err as { code?: string }).code ?? ''} ${(err as Error).message ?? ''}`;
  return /P2002|23505|unique/i.test(text);
}
