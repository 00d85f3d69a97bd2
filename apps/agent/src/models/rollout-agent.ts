import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { silentLogger, type Logger } from '@shelfsight/common';
import {
  SignedManifestSchema,
  verifySignedManifest,
  type Heartbeat,
  type ModelOffer,
  type ModelRejectReason,
  type RolloutManifest,
  type RolloutStatus,
  type ShadowStats,
  type SignedManifest,
  type TrustedKeys,
} from '@shelfsight/contracts';
import { writeFileAtomic } from '../storage/atomic-file';
import { ArtifactDownloadError, downloadArtifact } from './artifact-download';
import type { CandidateView, HeadHolder, ShadowableHead } from './head-holder';
import { checkManifest, type DeviceBackbone } from './offer-check';
import { TrustStore } from './trust-store';

/** Turns a verified artifact file into a head (the classifier kind decides the format). */
export type HeadLoader = (file: string, manifest: RolloutManifest) => Promise<ShadowableHead>;

export interface RolloutAgentOptions {
  stateDir: string;
  heads: HeadHolder;
  keys: TrustedKeys;
  backbone: DeviceBackbone;
  loadHead: HeadLoader;
  /** Base URL the offers' artifact paths are relative to. */
  hubHttpUrl: string;
  /** Sent with every download (the device credential). */
  headers?: Record<string, string>;
  shadowFrames: number;
  /** Publish a status; false when it could not be sent now (it is sent again on `resend`). */
  publish: (status: Omit<RolloutStatus, 'v' | 'deviceId'>) => boolean;
  now?: () => Date;
  logger?: Logger;
  download?: { attempts?: number; backoffMs?: number; idleTimeoutMs?: number };
}

const PointerSchema = z.object({ v: z.literal(1), version: z.string().min(1).max(128), offerId: z.string().min(1).max(128) });

/** Versions become folder names: keep them to a safe alphabet. */
const SAFE_VERSION = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * The device side of a rollout. For each `model-offer`: check the manifest (signature, key,
 * expiry, backbone, release counter), download the artifact into `<state>/models/<version>/`
 * and verify it, load the head beside the active one, shadow it for `shadowFrames` frames,
 * then activate it. Every step is reported on `rollout-status`; a refusal carries its reason
 * and is counted (`shelf_agent_model_rejected_total{reason}`).
 *
 * Activation is one atomic write of `<state>/models/active.json` (temp file + fsync + rename):
 * a `kill -9` at any moment leaves the pointer naming the old head or the new one, both
 * complete and verified on disk. At start, {@link RolloutAgent.open} re-verifies the head the
 * pointer names (signature and sha256) and activates it; a head that fails to load there
 * leaves the device on its configured head and is reported `rolled_back` (`load_failed`).
 */
export class RolloutAgent {
  readonly rejected: Partial<Record<ModelRejectReason, number>> = {};
  activations = 0;
  private chain: Promise<void> = Promise.resolve();
  private downloading: { modelVersion: string } | undefined;
  private shadowing: { offer: ModelOffer; manifest: RolloutManifest } | undefined;
  private readonly unsent: Array<Omit<RolloutStatus, 'v' | 'deviceId'>> = [];
  private readonly logger: Logger;
  private readonly now: () => Date;
  private closed = false;

  private constructor(
    private readonly options: RolloutAgentOptions,
    private readonly trust: TrustStore,
  ) {
    this.logger = (options.logger ?? silentLogger).child({ part: 'rollout' });
    this.now = options.now ?? (() => new Date());
    options.heads.on('shadow-complete', (view: CandidateView) => this.onShadowComplete(view));
    options.heads.on('candidate-failed', (e: { modelVersion: string; err: unknown }) => this.onCandidateFailed(e));
  }

  /** Open the trust store and bring back the head the active pointer names. */
  static async open(options: RolloutAgentOptions): Promise<RolloutAgent> {
    const agent = new RolloutAgent(options, await TrustStore.open(options.stateDir));
    await fsp.mkdir(agent.modelsDir, { recursive: true });
    await agent.restore();
    return agent;
  }

  private get modelsDir(): string {
    return path.join(this.options.stateDir, 'models');
  }

  private get pointerFile(): string {
    return path.join(this.modelsDir, 'active.json');
  }

  /** Take an offer; offers are handled one at a time, in arrival order. */
  offer(offer: ModelOffer): Promise<void> {
    const next = this.chain.then(() => this.handle(offer)).catch((err: unknown) => this.logger.error('rollout step failed', { err, offerId: offer.offerId }));
    this.chain = next;
    return next;
  }

  /** An offer that failed validation on the link: counted, nothing to report it against. */
  invalidOffer(message: string): void {
    this.count('malformed');
    this.logger.warn('ignored a malformed model offer', { detail: message });
  }

  /** What the heartbeat says: the active version and the candidate, whatever its stage. */
  heartbeatFields(): Pick<Heartbeat, 'activeModelVersion' | 'candidate'> {
    const heads = this.options.heads;
    const c = heads.candidate;
    const candidate = c
      ? { modelVersion: c.modelVersion, state: c.state, shadowFrames: c.shadowFrames, shadowTarget: c.shadowTarget }
      : this.downloading
        ? { modelVersion: this.downloading.modelVersion, state: 'downloading' as const }
        : undefined;
    return { activeModelVersion: heads.modelVersion, ...(candidate ? { candidate } : {}) };
  }

  /** Publish the statuses that could not be sent while disconnected (call on connect). */
  resend(): void {
    while (this.unsent.length > 0) {
      if (!this.options.publish(this.unsent[0]!)) return;
      this.unsent.shift();
    }
  }

  /** Wait for the offers taken so far to be handled (tests, stop). */
  async settled(): Promise<void> {
    await this.chain;
  }

  /** Take no further offers (a step in progress finishes on its own; the holder refuses its head once closed). */
  close(): void {
    this.closed = true;
  }

  private async handle(offer: ModelOffer): Promise<void> {
    if (this.closed) return;
    const heads = this.options.heads;
    const m = offer.signed.manifest;
    // A retained offer comes again after every reconnect: say where the device stands.
    if (m.modelVersion === heads.modelVersion) {
      this.report(offer, 'active', {});
      return;
    }
    if (this.shadowing?.manifest.modelVersion === m.modelVersion) return;
    this.report(offer, 'offered', {});

    const check = checkManifest(offer.signed, { keys: this.options.keys, trust: this.trust, backbone: this.options.backbone, now: this.now() });
    if (!check.ok) return this.reject(offer, check.reason, check.message);
    const manifest = check.manifest;
    if (!SAFE_VERSION.test(manifest.modelVersion)) return this.reject(offer, 'malformed', `model version ${JSON.stringify(manifest.modelVersion)} cannot name a folder`);

    const dir = path.join(this.modelsDir, manifest.modelVersion);
    const artifact = path.join(dir, 'artifact');
    this.downloading = { modelVersion: manifest.modelVersion };
    this.report(offer, 'downloading', {});
    try {
      if (!(await this.alreadyHave(artifact, manifest))) {
        await downloadArtifact({
          url: new URL(offer.artifactPath, this.options.hubHttpUrl).toString(),
          expected: manifest.artifact,
          dest: artifact,
          headers: this.options.headers,
          logger: this.logger,
          ...this.options.download,
        });
      }
      await writeFileAtomic(path.join(dir, 'signed.json'), JSON.stringify(offer.signed));
    } catch (err) {
      const reason = err instanceof ArtifactDownloadError ? err.reason : 'download_failed';
      return this.reject(offer, reason, (err as Error).message);
    } finally {
      this.downloading = undefined;
    }
    this.report(offer, 'verified', {});

    let head: ShadowableHead;
    try {
      head = await this.options.loadHead(artifact, manifest);
      if (head.modelVersion !== manifest.modelVersion) throw new Error(`loaded head says ${head.modelVersion}`);
      heads.setCandidate(head, this.options.shadowFrames);
    } catch (err) {
      return this.reject(offer, 'load_failed', (err as Error).message);
    }
    this.shadowing = { offer, manifest };
    this.report(offer, 'shadowing', {});
  }

  private onShadowComplete(view: CandidateView): void {
    const s = this.shadowing;
    if (!s || s.manifest.modelVersion !== view.modelVersion) return;
    this.chain = this.chain.then(() => this.activate(s.offer, s.manifest, view.shadow)).catch((err: unknown) => this.logger.error('activation failed', { err }));
  }

  private onCandidateFailed(e: { modelVersion: string; err: unknown }): void {
    const s = this.shadowing;
    if (!s || s.manifest.modelVersion !== e.modelVersion) return;
    this.shadowing = undefined;
    this.reject(s.offer, 'load_failed', `head failed while shadowing: ${(e.err as Error).message}`);
  }

  private async activate(offer: ModelOffer, manifest: RolloutManifest, shadow: ShadowStats | undefined): Promise<void> {
    const heads = this.options.heads;
    if (this.shadowing?.manifest.modelVersion !== manifest.modelVersion || heads.candidate?.modelVersion !== manifest.modelVersion) return;
    this.shadowing = undefined;
    // The commit point: once the pointer names the new head, a restart runs it.
    try {
      await writeFileAtomic(this.pointerFile, JSON.stringify({ v: 1, version: manifest.modelVersion, offerId: offer.offerId }));
    } catch (err) {
      heads.dropCandidate();
      return this.reject(offer, 'load_failed', `could not record the activation: ${(err as Error).message}`);
    }
    heads.activate();
    await this.trust.record(manifest);
    this.activations += 1;
    this.report(offer, 'active', shadow ? { shadow } : {});
  }

  /** Bring back the head the pointer names; on any failure stay on the configured head and say so. */
  private async restore(): Promise<void> {
    let pointer: z.infer<typeof PointerSchema>;
    try {
      pointer = PointerSchema.parse(JSON.parse(await fsp.readFile(this.pointerFile, 'utf8')));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.logger.error('active head pointer unreadable; staying on the configured head', { err });
      return;
    }
    const heads = this.options.heads;
    const dir = path.join(this.modelsDir, pointer.version);
    try {
      const raw: unknown = JSON.parse(await fsp.readFile(path.join(dir, 'signed.json'), 'utf8'));
      const signed: SignedManifest = SignedManifestSchema.parse(raw);
      // Expiry limits offers; a head already installed keeps running past it.
      const v = verifySignedManifest(signed, this.options.keys, new Date(signed.manifest.issuedAt));
      if (!v.ok) throw new Error(`stored manifest: ${v.message}`);
      const m = v.manifest;
      if (m.backbone.id !== this.options.backbone.id || m.backbone.checksum !== this.options.backbone.checksum) throw new Error('stored head is for another backbone');
      const artifact = path.join(dir, 'artifact');
      if (!(await this.alreadyHave(artifact, m))) throw new Error('stored artifact does not match its manifest');
      const head = await this.options.loadHead(artifact, m);
      heads.setCandidate(head, 0);
      heads.activate();
      await this.trust.record(m);
      this.logger.info('restored the active head', { modelVersion: m.modelVersion });
    } catch (err) {
      this.logger.error('could not restore the active head; rolled back to the configured head', { modelVersion: pointer.version, err });
      await fsp.rm(this.pointerFile, { force: true });
      this.count('load_failed');
      this.queue({
        offerId: pointer.offerId,
        modelVersion: pointer.version,
        state: 'rolled_back',
        reason: 'load_failed',
        detail: (err as Error).message.slice(0, 500),
        at: this.now().toISOString(),
        activeVersion: heads.modelVersion,
      });
    }
  }

  /** True when `file` is already the verified artifact (an offer seen before, a restart). */
  private async alreadyHave(file: string, m: RolloutManifest): Promise<boolean> {
    try {
      if ((await fsp.stat(file)).size !== m.artifact.length) return false;
    } catch {
      return false;
    }
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest('hex') === m.artifact.sha256;
  }

  private reject(offer: ModelOffer, reason: ModelRejectReason, message: string): void {
    this.count(reason);
    this.logger.warn('model offer refused', { offerId: offer.offerId, modelVersion: offer.signed.manifest.modelVersion, reason, detail: message });
    this.report(offer, 'rejected', { reason, detail: message.slice(0, 500) });
  }

  private count(reason: ModelRejectReason): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
  }

  private report(offer: ModelOffer, state: RolloutStatus['state'], extra: Pick<RolloutStatus, 'reason' | 'detail' | 'shadow'>): void {
    this.queue({
      offerId: offer.offerId,
      modelVersion: offer.signed.manifest.modelVersion,
      state,
      at: this.now().toISOString(),
      activeVersion: this.options.heads.modelVersion,
      ...extra,
    });
  }

  private queue(status: Omit<RolloutStatus, 'v' | 'deviceId'>): void {
    this.unsent.push(status);
    if (this.unsent.length > 50) this.unsent.shift();
    this.resend();
  }
}
