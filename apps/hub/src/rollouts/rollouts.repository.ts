import { Inject, Injectable } from '@nestjs/common';
import { Prisma, type PrismaClient } from '@shelfsight/db';
import type { HealthStats, OfferPolicy, RolloutStatus, ShadowStats, SignedManifest } from '@shelfsight/contracts';
import { PrismaService } from '../prisma/prisma.service';
import type { DeviceRolloutState, RolloutStage, RolloutState, RolloutTarget } from './rollout.dto';

/** The SQL a repository needs: the hub's client or one interactive transaction of it. */
type Db = Pick<PrismaClient, '$queryRaw' | '$executeRaw'>;

export interface SigningKeyRow {
  key_id: string;
  public_key: string;
  private_key: string | null;
  source: string;
  created_at: Date;
  retired_at: Date | null;
}

export interface RolloutRow {
  id: string;
  model_version: string;
  target: RolloutTarget;
  stages: RolloutStage[];
  policy: OfferPolicy | null;
  state: RolloutState;
  current_stage: number;
  stage_started: Array<string | null>;
  halt_reason: string | null;
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

export interface StageCountRow {
  rollout_id: string;
  stage: number;
  state: DeviceRolloutState;
  n: number;
}

/** Key of the advisory lock the stage engine ticks under (one replica at a time). */
const ENGINE_LOCK_KEY = 7_361_012;
/** Key of the lock around generating the first signing key (replicas starting together generate one). */
const KEYGEN_LOCK_KEY = 7_361_013;

/** SQL of rollouts: signing keys, release counters, rollouts, their devices. */
@Injectable()
export class RolloutsRepository {
  constructor(@Inject(PrismaService) private readonly db: Db & Pick<PrismaClient, '$transaction'>) {}

  // --- signing keys

  async upsertKey(k: { keyId: string; publicKey: string; privateKey: string | null; source: string }): Promise<void> {
    await this.db.$executeRaw`
      INSERT INTO rollout_signing_keys (key_id, public_key, private_key, source) VALUES (${k.keyId}, ${k.publicKey}, ${k.privateKey}, ${k.source})
      ON CONFLICT (key_id) DO NOTHING`;
  }

  /** The newest generated key still in use; `generate` makes one (under a lock) when there is none. */
  async generatedKey(generate: () => { keyId: string; publicKey: string; privateKey: string }): Promise<SigningKeyRow> {
    return this.db.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT pg_advisory_xact_lock(${KEYGEN_LOCK_KEY}::bigint)::text`;
      const rows = await tx.$queryRaw<SigningKeyRow[]>`
        SELECT * FROM rollout_signing_keys WHERE private_key IS NOT NULL AND retired_at IS NULL ORDER BY created_at DESC LIMIT 1`;
      if (rows[0]) return rows[0];
      const k = generate();
      const made = await tx.$queryRaw<SigningKeyRow[]>`
        INSERT INTO rollout_signing_keys (key_id, public_key, private_key, source) VALUES (${k.keyId}, ${k.publicKey}, ${k.privateKey}, 'generated') RETURNING *`;
      return made[0]!;
    });
  }

  trustedKeys(): Promise<SigningKeyRow[]> {
    return this.db.$queryRaw<SigningKeyRow[]>`SELECT * FROM rollout_signing_keys WHERE retired_at IS NULL ORDER BY created_at, key_id`;
  }

  async retireKey(keyId: string): Promise<boolean> {
    const n = await this.db.$executeRaw`UPDATE rollout_signing_keys SET retired_at = now() WHERE key_id = ${keyId} AND retired_at IS NULL`;
    return n > 0;
  }

  /** The next release counter of (backbone, label list): one above every one signed before. */
  async nextReleaseCounter(backboneId: string, labelsHash: string): Promise<number> {
    const rows = await this.db.$queryRaw<Array<{ counter: bigint }>>`
      INSERT INTO rollout_release_counters (backbone_id, labels_hash, counter) VALUES (${backboneId}, ${labelsHash}, 1)
      ON CONFLICT (backbone_id, labels_hash) DO UPDATE SET counter = rollout_release_counters.counter + 1
      RETURNING counter`;
    return Number(rows[0]!.counter);
  }

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

  devicesOf(rolloutId: string): Promise<RolloutDeviceRow[]> {
    return this.db.$queryRaw<RolloutDeviceRow[]>`
      SELECT rollout_id, device_id, stage, state, reason, detail, previous_version, active_version, shadow, health, offered_at, status_at
      FROM rollout_devices WHERE rollout_id = ${rolloutId} ORDER BY stage, device_id`;
  }

  /** Move a rollout from one of `from` to `to`; false when it was not in one of them (another request or replica moved it). */
  async transition(id: string, from: readonly RolloutState[], to: RolloutState, opts: { haltReason?: string; close?: boolean } = {}): Promise<boolean> {
    const finished = to === 'completed' || to === 'aborted' || to === 'rolled_back';
    const n = await this.db.$executeRaw`
      UPDATE rollouts SET state = ${to}, updated_at = now(),
        halt_reason = COALESCE(${opts.haltReason ?? null}, halt_reason),
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
   * Record a device's status for its offer; false when the hub made no such offer to it.
   * Statuses may be handled out of order (handlers run concurrently): an older one never
   * overwrites a newer, and of two with the same time the later step wins.
   */
  async recordStatus(s: RolloutStatus): Promise<boolean> {
    const at = new Date(s.at);
    const order = ['pending', 'offered', 'downloading', 'verified', 'shadowing', 'active', 'rejected', 'rolled_back'];
    const newer = Prisma.sql`(d.status_at IS NULL OR d.status_at < ${at}
      OR (d.status_at = ${at} AND array_position(${order}::text[], ${s.state}::text) >= array_position(${order}::text[], d.state)))`;
    const rows = await this.db.$queryRaw<Array<{ ok: number }>>`
      UPDATE rollout_devices d SET
        state = CASE WHEN ${newer} THEN ${s.state} ELSE d.state END,
        reason = CASE WHEN ${newer} THEN ${s.reason ?? null} ELSE d.reason END,
        detail = CASE WHEN ${newer} THEN ${s.detail ?? null} ELSE d.detail END,
        active_version = CASE WHEN ${newer} THEN ${s.activeVersion} ELSE d.active_version END,
        previous_version = COALESCE(d.previous_version, CASE WHEN ${s.activeVersion} <> r.model_version THEN ${s.activeVersion} END),
        shadow = COALESCE(${s.shadow ? JSON.stringify(s.shadow) : null}::jsonb, d.shadow),
        health = COALESCE(${s.health ? JSON.stringify(s.health) : null}::jsonb, d.health),
        offered_at = COALESCE(d.offered_at, ${at}),
        status_at = GREATEST(COALESCE(d.status_at, ${at}), ${at}),
        updated_at = now()
      FROM rollouts r
      WHERE r.id = d.rollout_id AND d.rollout_id = ${s.offerId} AND d.device_id = ${s.deviceId} AND r.model_version = ${s.modelVersion}
      RETURNING 1 AS ok`;
    return rows.length > 0;
  }

  async setDeviceModelVersion(deviceId: string, version: string): Promise<void> {
    await this.db.$executeRaw`UPDATE devices SET model_version = ${version} WHERE id = ${deviceId} AND model_version IS DISTINCT FROM ${version}`;
  }

  /** May this device read this version's artifact: it is in an unfinished rollout of it whose stage reached it. */
  async deviceMayRead(deviceId: string, modelVersion: string): Promise<boolean> {
    const rows = await this.db.$queryRaw<Array<{ ok: number }>>`
      SELECT 1 AS ok FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
      WHERE d.device_id = ${deviceId} AND d.open AND r.state IN ('running', 'paused') AND r.model_version = ${modelVersion} AND d.stage <= r.current_stage
      LIMIT 1`;
    return rows.length > 0;
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

async function findHolder(db: Db, ids: string[]): Promise<{ rolloutId: string; deviceId: string } | undefined> {
  const rows = await db.$queryRaw<Array<{ rollout_id: string; device_id: string }>>`
    SELECT rollout_id, device_id FROM rollout_devices WHERE open AND device_id = ANY(${ids}::text[]) ORDER BY device_id LIMIT 1`;
  return rows[0] ? { rolloutId: rows[0].rollout_id, deviceId: rows[0].device_id } : undefined;
}

function isUniqueViolation(err: unknown): boolean {
  const text = `${(err as { code?: string }).code ?? ''} ${(err as Error).message ?? ''}`;
  return /P2002|23505|unique/i.test(text);
}
