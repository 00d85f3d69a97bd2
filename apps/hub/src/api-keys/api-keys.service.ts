import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, Logger, Optional, type OnApplicationBootstrap } from '@nestjs/common';
import type { Principal } from '../auth/actor';
import { ClusterBus, SoloClusterBus } from '../cluster/cluster-bus';
import { roleAtLeast } from '../auth/roles';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { generateApiKey, parseApiKey, secretMatches, sha256Hex } from './api-key-format';
import type { ApiKeyDto, CreateApiKey, CreatedApiKeyDto } from './api-key.dto';
import { ApiKeyNotFoundError, ApiKeyTooPowerfulError, BootstrapKeyError } from './api-keys.error';
import { ApiKeysRepository, type ApiKeyRow } from './api-keys.repository';

/** Why a key was refused (the label of shelfsight_api_key_refused_total). */
export type KeyRefusal = 'unknown' | 'wrong' | 'expired' | 'revoked';

/** The id of the bootstrap key (HUB_API_KEY), as principals and the audit log name it. */
export const BOOTSTRAP_KEY_ID = 'bootstrap';

/** The file a first start writes its admin key to, in DATA_DIR. */
export const FIRST_KEY_FILE = 'admin-api-key';

/**
 * How long a looked-up key is trusted before the database is asked again. A revocation is
 * immediate on the hub that made it and reaches the other replicas' caches over the cluster
 * bus (milliseconds); this bounds it when that message was lost (a replica reconnecting).
 */
const CACHE_MS = 5_000;
/** The cluster bus kind that tells the other replicas a key was revoked (body: `{ id }`). */
export const KEY_REVOKED = 'api-key-revoked';
/** last_used_at is written at most this often per key. */
const TOUCH_EVERY_MS = 60_000;

export const CLOCK = Symbol('CLOCK');
export type Clock = () => number;

/** The caller of a request as far as keys know it: its principal and (for stored keys) its expiry. */
export interface KeyPrincipal extends Principal {
  keyId: string;
  expiresAt: Date | null;
}

/**
 * API keys: created (shown once), listed, revoked; looked up per request by the access
 * guard. `HUB_API_KEY` is a bootstrap admin key beside the stored ones; a hub with neither
 * creates an admin key at first start and writes it to DATA_DIR (mode 0600).
 */
@Injectable()
export class ApiKeysService implements OnApplicationBootstrap {
  private readonly log = new Logger('ApiKeys');
  private readonly bootstrapDigest?: Buffer;
  private readonly cache = new Map<string, { row: ApiKeyRow; until: number }>();
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly repo: ApiKeysRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    @Inject(CLOCK) private readonly now: Clock,
    @Optional() private readonly cluster: ClusterBus = new SoloClusterBus(),
  ) {
    this.bootstrapDigest = config.hubApiKey ? Buffer.from(sha256Hex(config.hubApiKey), 'hex') : undefined;
    cluster.on(KEY_REVOKED, (body) => {
      const id = (body as { id?: unknown } | null)?.id;
      if (typeof id === 'string') this.cache.delete(id);
    });
    // Back from a gap in which a revocation may have been missed: ask the database again.
    cluster.onResync(() => this.cache.clear());
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.hubApiKey) return;
    const key = generateApiKey();
    const row = await this.repo.insertFirst({ id: key.id, name: 'first admin key', role: 'admin', secretSha256: key.secretSha256, createdBy: 'hub (first start)', expiresAt: null });
    if (!row) return;
    mkdirSync(this.config.dataDir, { recursive: true });
    const file = join(this.config.dataDir, FIRST_KEY_FILE);
    writeFileSync(file, `${key.key}\n`, { mode: 0o600 });
    chmodSync(file, 0o600); // an existing file keeps its mode on write
    process.stderr.write(
      `\n  First start: created admin API key ${key.id} (shown only now; also in ${file}, readable by this user only):\n\n    ${key.key}\n\n` +
        `  Send it as the X-API-Key header. Create narrower keys with \`shelf key create\`, then revoke this one.\n\n`,
    );
    this.log.log(`created the first admin key ${key.id} (written to ${file})`);
  }

  /** The principal a presented key stands for, or why it is refused. */
  async authenticate(given: string): Promise<KeyPrincipal | KeyRefusal> {
    if (this.bootstrapDigest && timingSafeEqual(Buffer.from(sha256Hex(given), 'hex'), this.bootstrapDigest)) {
      return { id: `key:${BOOTSTRAP_KEY_ID}`, role: 'admin', keyId: BOOTSTRAP_KEY_ID, expiresAt: null };
    }
    const parsed = parseApiKey(given);
    if (!parsed) return 'wrong'; // neither the bootstrap key nor one of ours
    const row = await this.lookup(parsed.id);
    if (!row) return 'unknown';
    if (!secretMatches(parsed.secret, row.secret_sha256)) return 'wrong';
    if (row.revoked_at) return 'revoked';
    const now = this.now();
    if (row.expires_at && row.expires_at.getTime() <= now) return 'expired';
    this.noteUse(row.id, now);
    return { id: `key:${row.id}`, role: row.role, keyId: row.id, expiresAt: row.expires_at };
  }

  /** A new key with at most the creator's role and lifetime. */
  async create(input: CreateApiKey, creator: KeyPrincipal): Promise<CreatedApiKeyDto> {
    if (!roleAtLeast(creator.role, input.role)) {
      throw new ApiKeyTooPowerfulError(`a ${creator.role} key cannot create a ${input.role} key`);
    }
    const requested = input.expiresAt ? new Date(input.expiresAt) : null;
    if (requested && requested.getTime() <= this.now()) throw new ApiKeyTooPowerfulError('expiresAt is in the past');
    let expiresAt = requested;
    if (creator.expiresAt) {
      if (requested && requested > creator.expiresAt) {
        throw new ApiKeyTooPowerfulError(`a key that expires at ${creator.expiresAt.toISOString()} cannot create one that outlives it`);
      }
      expiresAt = requested ?? creator.expiresAt;
    }
    const key = generateApiKey();
    const row = await this.repo.insert({ id: key.id, name: input.name, role: input.role, secretSha256: key.secretSha256, createdBy: creator.id, expiresAt });
    this.log.log(`API key ${key.id} (${input.role}) created by ${creator.id}`);
    return { ...toDto(row), key: key.key };
  }

  async list(): Promise<ApiKeyDto[]> {
    return (await this.repo.list()).map(toDto);
  }

  async revoke(id: string, by: Principal): Promise<ApiKeyDto> {
    if (id === BOOTSTRAP_KEY_ID) throw new BootstrapKeyError();
    const row = await this.repo.revoke(id, by.id);
    this.cache.delete(id);
    this.cluster.send(KEY_REVOKED, { id });
    if (!row) throw new ApiKeyNotFoundError(id);
    this.log.log(`API key ${id} revoked by ${by.id}`);
    return toDto(row);
  }

  private async lookup(id: string): Promise<ApiKeyRow | undefined> {
    const now = this.now();
    const cached = this.cache.get(id);
    if (cached && cached.until > now) return cached.row;
    const row = await this.repo.find(id);
    if (row) this.cache.set(id, { row, until: now + CACHE_MS });
    else this.cache.delete(id);
    return row;
  }

  private noteUse(id: string, now: number): void {
    if ((this.touched.get(id) ?? 0) + TOUCH_EVERY_MS > now) return;
    this.touched.set(id, now);
    this.repo.touch(id, new Date(now)).catch((e: unknown) => this.log.warn(`could not record use of key ${id}: ${(e as Error).message}`));
  }
}

function toDto(row: ApiKeyRow): ApiKeyDto {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    expiresAt: row.expires_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
  };
}
