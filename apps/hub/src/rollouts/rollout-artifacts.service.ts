import { Inject, Injectable } from '@nestjs/common';
import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { RateLimitedLog } from '../common/rate-limited-log';
import { HubMetrics } from '../metrics/hub-metrics';
import { ModelsRepository } from '../models/models.repository';
import { Logger } from '@nestjs/common';
import { DeviceHttpAuth } from './device-http-auth';
import { DownloadTokens } from './download-tokens';
import { ArtifactAccessError } from './rollouts.error';
import { RolloutsRepository } from './rollouts.repository';
import { ROLLOUT_CLOCK, type RolloutClock } from './rollouts.service';

/** Artifacts up to this size are served from memory after their first download. */
const CACHED_ARTIFACT_MAX_BYTES = 16 * 1024 * 1024;
/** Memory for cached artifact bytes, in all. */
const ARTIFACT_CACHE_BYTES = 64 * 1024 * 1024;

/** An API key's principal the access guard admitted (operator or above), or a device's Authorization header to check. */
export type ArtifactCaller = { principal: string } | { authorization: string | undefined };

/**
 * Who may download a version's artifact, and its bytes: a device that an unfinished rollout
 * of the version has reached, by the download token of its offer (`Bearer`, see
 * {@link DownloadTokens}) or its credential (HTTP basic, as on MQTT), or an operator's API
 * key (checked by the access guard). Every refusal is counted by reason.
 *
 * A rollout has a thousand devices download the same few bytes within seconds: a version's
 * artifact facts (sha256, length: fixed once registered) and the bytes of recent artifacts
 * (content-addressed, so never stale) are kept in memory, and each download costs one query
 * (is the device provisioned, enabled and reached by an unfinished rollout of the version).
 */
@Injectable()
export class RolloutArtifactsService {
  private readonly log = new RateLimitedLog((line) => new Logger('RolloutArtifacts').warn(line));
  /** Version -> its artifact's sha256 and length (immutable once registered). */
  private readonly facts = new LRUCache<string, { sha256: string; bytes: number }>({ max: 256 });
  /** sha256 -> the artifact's bytes, for artifacts up to {@link CACHED_ARTIFACT_MAX_BYTES}. */
  private readonly bytesOf = new LRUCache<string, Buffer>({ maxSize: ARTIFACT_CACHE_BYTES, sizeCalculation: (b) => Math.max(1, b.length) });

  constructor(
    private readonly deviceAuth: DeviceHttpAuth,
    private readonly tokens: DownloadTokens,
    private readonly repo: RolloutsRepository,
    private readonly models: ModelsRepository,
    private readonly metrics: HubMetrics,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(ROLLOUT_CLOCK) private readonly now: RolloutClock,
  ) {}

  /** The artifact's sha256 and length, once the caller may read it; else 401/403/404. */
  async authorize(modelVersion: string, caller: ArtifactCaller): Promise<{ sha256: string; bytes: number; reader: string }> {
    const reader = await this.reader(modelVersion, caller);
    const facts = await this.factsOf(modelVersion);
    if (!facts) throw new ArtifactAccessError(404, `model version ${modelVersion} not found`);
    return { ...facts, reader };
  }

  /** The artifact's bytes (or the range's), from memory when it is small and was read before. */
  async open(sha256: string, bytes: number, range?: { start: number; end: number }): Promise<Readable> {
    const sent = range ? range.end - range.start + 1 : bytes;
    let cached = this.bytesOf.get(sha256);
    if (!cached && bytes <= CACHED_ARTIFACT_MAX_BYTES) {
      cached = await this.blobs.get(sha256);
      if (cached) this.bytesOf.set(sha256, cached);
    }
    if (cached) {
      this.metrics.rolloutArtifactBytes.inc(sent);
      return Readable.from([range ? cached.subarray(range.start, range.end + 1) : cached]);
    }
    const blob = await this.blobs.open(sha256, range);
    if (!blob) throw new ArtifactAccessError(404, `artifact blob ${sha256} is missing`);
    this.metrics.rolloutArtifactBytes.inc(sent);
    return blob.stream;
  }

  private async factsOf(modelVersion: string): Promise<{ sha256: string; bytes: number } | undefined> {
    const known = this.facts.get(modelVersion);
    if (known) return known;
    const version = await this.models.findVersion(modelVersion);
    if (!version) return undefined;
    const facts = { sha256: version.artifact_sha256, bytes: Number(version.artifact_bytes) };
    this.facts.set(modelVersion, facts);
    return facts;
  }

  private async reader(modelVersion: string, caller: ArtifactCaller): Promise<string> {
    if ('principal' in caller) return caller.principal;
    const bearer = /^Bearer\s+(\S+)$/i.exec(caller.authorization ?? '');
    let deviceId: string;
    if (bearer) {
      const t = this.tokens.check(bearer[1]!, modelVersion, this.now());
      if (!t.ok) return this.refuse(401, t.reason, `download token refused (${t.reason}): use the token of a current offer for this version, or the device credential (HTTP basic)`);
      deviceId = t.deviceId;
    } else {
      const device = await this.deviceAuth.check(caller.authorization);
      if (!device.ok) return this.refuse(401, device.reason, `device credential refused (${device.reason}): send HTTP basic auth with the device id and its MQTT password`);
      deviceId = device.deviceId;
    }
    const access = await this.repo.artifactAccess(deviceId, modelVersion);
    // A token outlives nothing: a device disabled since its offer is refused like its password.
    if (access.credential !== 'enabled') {
      const disabled = access.credential === 'disabled';
      return this.refuse(401, disabled ? 'disabled' : 'unknown_device', `device ${deviceId} is ${disabled ? 'disabled' : 'not provisioned'}`);
    }
    if (!access.targeted) return this.refuse(403, 'not_targeted', `no unfinished rollout of ${modelVersion} has reached device ${deviceId}`);
    return `device:${deviceId}`;
  }

  private refuse(status: 401 | 403, reason: string, message: string): never {
    this.metrics.rolloutArtifactRefused.inc({ reason });
    this.log.warn(`artifact download refused (${reason}): ${message}`);
    throw new ArtifactAccessError(status, message);
  }
}
