import { Inject, Injectable } from '@nestjs/common';
import type { ReadStream } from 'node:fs';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { RateLimitedLog } from '../common/rate-limited-log';
import { HubMetrics } from '../metrics/hub-metrics';
import { ModelsRepository } from '../models/models.repository';
import { Logger } from '@nestjs/common';
import { CredentialsService } from '../credentials/credentials.service';
import { DeviceHttpAuth } from './device-http-auth';
import { DownloadTokens } from './download-tokens';
import { ArtifactAccessError } from './rollouts.error';
import { RolloutsRepository } from './rollouts.repository';
import { ROLLOUT_CLOCK, type RolloutClock } from './rollouts.service';

/** An API key's principal the access guard admitted (operator or above), or a device's Authorization header to check. */
export type ArtifactCaller = { principal: string } | { authorization: string | undefined };

/**
 * Who may download a version's artifact, and its bytes: a device that an unfinished rollout
 * of the version has reached, by the download token of its offer (`Bearer`, see
 * {@link DownloadTokens}) or its credential (HTTP basic, as on MQTT), or an operator's API
 * key (checked by the access guard). Every refusal is counted by reason.
 */
@Injectable()
export class RolloutArtifactsService {
  private readonly log = new RateLimitedLog((line) => new Logger('RolloutArtifacts').warn(line));

  constructor(
    private readonly deviceAuth: DeviceHttpAuth,
    private readonly tokens: DownloadTokens,
    private readonly credentials: CredentialsService,
    private readonly repo: RolloutsRepository,
    private readonly models: ModelsRepository,
    private readonly metrics: HubMetrics,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(ROLLOUT_CLOCK) private readonly now: RolloutClock,
  ) {}

  /** The artifact's sha256 and length, once the caller may read it; else 401/403/404. */
  async authorize(modelVersion: string, caller: ArtifactCaller): Promise<{ sha256: string; bytes: number; reader: string }> {
    const reader = await this.reader(modelVersion, caller);
    const version = await this.models.findVersion(modelVersion);
    if (!version) throw new ArtifactAccessError(404, `model version ${modelVersion} not found`);
    return { sha256: version.artifact_sha256, bytes: Number(version.artifact_bytes), reader };
  }

  async open(sha256: string, range?: { start: number; end: number }): Promise<ReadStream> {
    const blob = await this.blobs.open(sha256, range);
    if (!blob) throw new ArtifactAccessError(404, `artifact blob ${sha256} is missing`);
    this.metrics.rolloutArtifactBytes.inc(range ? range.end - range.start + 1 : blob.bytes);
    return blob.stream;
  }

  private async reader(modelVersion: string, caller: ArtifactCaller): Promise<string> {
    if ('principal' in caller) return caller.principal;
    const device = await this.device(modelVersion, caller.authorization);
    if (!(await this.repo.deviceMayRead(device.deviceId, modelVersion))) {
      return this.refuse(403, 'not_targeted', `no unfinished rollout of ${modelVersion} has reached device ${device.deviceId}`);
    }
    return `device:${device.deviceId}`;
  }

  /** The device a bearer download token or a basic device credential names; refused (401) otherwise. */
  private async device(modelVersion: string, authorization: string | undefined): Promise<{ deviceId: string }> {
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (bearer) {
      const t = this.tokens.check(bearer[1]!, modelVersion, this.now());
      if (!t.ok) return this.refuse(401, t.reason, `download token refused (${t.reason}): use the token of a current offer for this version, or the device credential (HTTP basic)`);
      // A token outlives nothing: a device disabled since its offer is refused like its password.
      const credential = await this.credentials.find(t.deviceId);
      if (!credential || credential.disabled) return this.refuse(401, credential ? 'disabled' : 'unknown_device', `device ${t.deviceId} is ${credential ? 'disabled' : 'not provisioned'}`);
      return { deviceId: t.deviceId };
    }
    const device = await this.deviceAuth.check(authorization);
    if (!device.ok) return this.refuse(401, device.reason, `device credential refused (${device.reason}): send HTTP basic auth with the device id and its MQTT password`);
    return device;
  }

  private refuse(status: 401 | 403, reason: string, message: string): never {
    this.metrics.rolloutArtifactRefused.inc({ reason });
    this.log.warn(`artifact download refused (${reason}): ${message}`);
    throw new ArtifactAccessError(status, message);
  }
}
