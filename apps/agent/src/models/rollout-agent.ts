import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { silentLogger, type Logger } from '@shelfsight/common';
import {
  currentReleaseKeys,
  DEFAULT_MODEL_LINE,
  SignedManifestSchema,
  verifyModelCommand,
  verifySignedManifest,
  type CommandCheckFailure,
  type HealthStats,
  type KeyListCheck,
  type KeyListFailure,
  type Heartbeat,
  type ModelCommand,
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
import type { CandidateView, HeadHolder, HealthBaseline, HealthWatchResult, ShadowableHead } from './head-holder';
import { checkAuthentic, checkForDevice, type DeviceBackbone } from './offer-check';
import { healthFailure, shadowGateFailure } from './offer-policy';
import { RefusedOffers } from './refused-offers';
import { TrustStore } from './trust-store';

/** Turns a verified artifact file into a head (the classifier kind decides the format). */
export type HeadLoader = (file: string, manifest: RolloutManifest) => Promise<ShadowableHead>;

export interface RolloutAgentOptions {
  stateDir: string;
  /** This device: commands for another are refused. */
  deviceId: string;
  heads: HeadHolder;
  /** The root public keys this device is provisioned with; release keys come from the lists they sign. */
  roots: TrustedKeys;
  /** A release key list to take at open (fetched from the hub at start), before stored heads are verified. */
  keyList?: unknown;
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

const HeadRefSchema = z.object({ version: z.string().min(1).max(128), offerId: z.string().min(1).max(128) });
/** `version` absent: the configured head. `previous` absent: the configured head (or none kept). */
const PointerSchema = z.object({ v: z.literal(1), version: z.string().min(1).max(128).optional(), offerId: z.string().min(1).max(128).optional(), previous: HeadRefSchema.optional() });
type HeadRef = z.infer<typeof HeadRefSchema>;

/** The offer a status is about. */
interface OfferRef {
  offerId: string;
  modelVersion: string;
}

const refOf = (offer: ModelOffer): OfferRef => ({ offerId: offer.offerId, modelVersion: offer.signed.manifest.modelVersion });

/** Versions become folder names: keep them to a safe alphabet. */
const SAFE_VERSION = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * The device side of a rollout. Release keys come from the root-signed key list it holds
 * (`takeKeyList`: a list a pinned root signed with a higher version; persisted). For each
 * `model-offer`: check that it is what the hub signed (a current release key, the signature,
 * the expiry, `offerId` inside the signed manifest) before reporting anything, then what this
 * device may run (backbone, a release counter above the newest activated on the model line), download the artifact into `<state>/models/<version>/`
 * and verify it, load the head beside the active one, shadow it for `policy.shadowFrames`
 * (else `shadowFrames`) frames, judge the shadow run by the offer's `policy.shadowGate`, then
 * activate it and, with `policy.health`, watch its next frames against the previous head's
 * figures from the shadow run, rolling back by itself on a regression. Every step is reported
 * on `rollout-status`; a refusal carries its reason and is counted
 * (`shelf_agent_model_rejected_total{reason}`).
 *
 * Activation and rollback are one atomic write of `<state>/models/active.json` (temp file +
 * fsync + rename): a `kill -9` at any moment leaves the pointer naming the old head or the
 * new one, both complete and verified on disk. The pointer also names the previous head, so
 * a rollback stays possible after a restart. At start, {@link RolloutAgent.open} re-verifies
 * the heads the pointer names (signature and sha256) and activates them; a head that fails to
 * load there leaves the device on its configured head and is reported `rolled_back`
 * (`load_failed`).
 *
 * Commands (`model-command`) are taken only when signed by a current release key, for this
 * device, unexpired, with a nonce not seen before; others are counted (`commandsRefused`).
 * Offers rolled back or cancelled are remembered in
 * `<state>/rollout/refused.json` before the pointer moves, and refused with
 * `rolled_back_before` when they come again; a pointer that names a remembered offer (a
 * rollback interrupted between the two writes) is finished at start.
 */
export class RolloutAgent {
  readonly rejected: Partial<Record<ModelRejectReason, number>> = {};
  /** Model commands refused (forged, tampered, for another device, expired, replayed), by reason. */
  readonly commandsRefused: Partial<Record<CommandCheckFailure, number>> = {};
  /** Key lists refused (not from a trusted root, tampered, expired, not newer than the held one), by reason. */
  readonly keyListsRefused: Partial<Record<KeyListFailure, number>> = {};
  activations = 0;
  rollbacks = 0;
  private chain: Promise<void> = Promise.resolve();
  private downloading: { offerId: string; modelVersion: string } | undefined;
  private cancelRequested: string | undefined;
  private shadowing: { offer: ModelOffer; manifest: RolloutManifest } | undefined;
  private watching: { offer: ModelOffer; baseline: HealthBaseline } | undefined;
  /** The rolled-out head that is active (undefined: the configured head) and the one kept for rollback. */
  private current: HeadRef | undefined;
  private previous: HeadRef | undefined;
  private readonly unsent: Array<Omit<RolloutStatus, 'v' | 'deviceId'>> = [];
  private readonly logger: Logger;
  private readonly now: () => Date;
  private closed = false;

  private constructor(
    private readonly options: RolloutAgentOptions,
    private readonly trust: TrustStore,
    private readonly refused: RefusedOffers,
  ) {
    this.logger = (options.logger ?? silentLogger).child({ part: 'rollout' });
    this.now = options.now ?? (() => new Date());
    options.heads.on('shadow-complete', (view: CandidateView) => this.onShadowComplete(view));
    options.heads.on('candidate-failed', (e: { modelVersion: string; err: unknown }) => this.onCandidateFailed(e));
    options.heads.on('health-complete', (r: HealthWatchResult) => this.onHealthComplete(r));
  }

  /** Open the trust store and the refused offers, and bring back the heads the active pointer names. */
  static async open(options: RolloutAgentOptions): Promise<RolloutAgent> {
    const agent = new RolloutAgent(options, await TrustStore.open(options.stateDir, options.roots, DEFAULT_MODEL_LINE), await RefusedOffers.open(options.stateDir));
    if (options.keyList !== undefined) await agent.takeKeyList(options.keyList, 'hub');
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

  /** Version of the release key list held (0: none yet: every offer is refused as `unknown_key`). */
  get keyListVersion(): number {
    return this.trust.keyList?.list.version ?? 0;
  }

  /**
   * Take a release key list (retained on MQTT, or fetched from the hub): held from now on when
   * a pinned root signed it with a higher version; otherwise counted and ignored (the same
   * list delivered again is not a refusal).
   */
  async takeKeyList(raw: unknown, source: string): Promise<KeyListCheck> {
    const held = this.trust.keyList;
    const v = await this.trust.offerKeyList(raw, this.now());
    if (v.ok) {
      this.logger.info('release key list taken', { source, version: v.list.version, keys: [...v.keys.keys()].map((k) => k.slice(0, 12)) });
      return v;
    }
    const again = held !== undefined && v.reason === 'not_newer' && (raw as { signature?: unknown } | null)?.signature === held.signed.signature;
    if (!again) {
      this.keyListsRefused[v.reason] = (this.keyListsRefused[v.reason] ?? 0) + 1;
      this.logger.warn('release key list refused', { source, reason: v.reason, detail: v.message });
    }
    return v;
  }

  /** Take an offer; offers are handled one at a time, in arrival order. */
  offer(offer: ModelOffer): Promise<void> {
    return this.enqueue(() => this.handle(offer), offer.offerId);
  }

  /** An offer that failed validation on the link: counted, nothing to report it against. */
  invalidOffer(message: string): void {
    this.count('malformed');
    this.logger.warn('ignored a malformed model offer', { detail: message });
  }

  /**
   * Take an operator's command: `rollback` of the active version returns to the previous
   * head, `cancel` drops a candidate (a download in progress is dropped when it ends).
   */
  command(cmd: ModelCommand): Promise<void> {
    // Signed by a current release key, for this device, not expired; a nonce is taken once.
    const v = verifyModelCommand(cmd, this.releaseKeys(), this.options.deviceId, this.now());
    if (!v.ok) {
      this.refuseCommand(cmd, v.reason, v.message);
      return Promise.resolve();
    }
    return this.enqueue(async () => {
      if (!(await this.trust.takeNonce(cmd.nonce, cmd.expiresAt, this.now()))) return this.refuseCommand(cmd, 'replayed', `nonce ${cmd.nonce} was used before`);
      await this.handleCommand(cmd);
    }, cmd.offerId);
  }

  private refuseCommand(cmd: ModelCommand, reason: CommandCheckFailure, message: string): void {
    this.commandsRefused[reason] = (this.commandsRefused[reason] ?? 0) + 1;
    this.logger.warn('model command refused', { command: cmd.command, offerId: cmd.offerId, modelVersion: cmd.modelVersion, reason, detail: message });
  }

  /** The release keys that sign offers and commands now: the held list's, none once it expired. */
  private releaseKeys(): TrustedKeys {
    return currentReleaseKeys(this.trust.keyList, this.now());
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

  /** Wait for the offers and commands taken so far to be handled (tests, stop). */
  async settled(): Promise<void> {
    await this.chain;
  }

  /** Take no further offers (a step in progress finishes on its own; the holder refuses its head once closed). */
  close(): void {
    this.closed = true;
  }

  private enqueue(step: () => Promise<void>, offerId: string): Promise<void> {
    const next = this.chain.then(step).catch((err: unknown) => this.logger.error('rollout step failed', { err, offerId }));
    this.chain = next;
    return next;
  }

  private async handle(offer: ModelOffer): Promise<void> {
    if (this.closed) return;
    const heads = this.options.heads;
    // Authenticity first, before anything is reported: a forged offer, a tampered one or one
    // borrowing a real rollout's id is refused with a reason the hub counts as an attack.
    const auth = checkAuthentic(offer.signed, offer.offerId, this.releaseKeys(), this.now());
    if (!auth.ok) return this.reject(refOf(offer), auth.reason, auth.message);
    const m = auth.manifest;
    const refusedBefore = this.refused.get(offer.offerId);
    if (refusedBefore) {
      return this.reject(refOf(offer), 'rolled_back_before', `offer ${offer.offerId} (${refusedBefore.modelVersion}) was ${refusedBefore.state === 'rolled_back' ? 'rolled back' : 'cancelled'} on this device before; not installing it again`);
    }
    // A retained offer comes again after every reconnect: say where the device stands.
    if (m.modelVersion === heads.modelVersion) {
      this.report(refOf(offer), 'active', {});
      return;
    }
    if (this.shadowing?.manifest.modelVersion === m.modelVersion) return;
    // Before `offered` too: a replayed older release must not show up as offered in its old rollout.
    const check = checkForDevice(m, { trust: this.trust, backbone: this.options.backbone });
    if (!check.ok) return this.reject(refOf(offer), check.reason, check.message);
    this.report(refOf(offer), 'offered', {});
    const manifest = check.manifest;
    if (!SAFE_VERSION.test(manifest.modelVersion)) return this.reject(refOf(offer), 'malformed', `model version ${JSON.stringify(manifest.modelVersion)} cannot name a folder`);

    const dir = path.join(this.modelsDir, manifest.modelVersion);
    const artifact = path.join(dir, 'artifact');
    this.downloading = { offerId: offer.offerId, modelVersion: manifest.modelVersion };
    this.cancelRequested = undefined;
    this.report(refOf(offer), 'downloading', {});
    try {
      if (!(await this.alreadyHave(artifact, manifest))) {
        const download = (headers: Record<string, string> | undefined) =>
          downloadArtifact({
            url: new URL(offer.artifactPath, this.options.hubHttpUrl).toString(),
            expected: manifest.artifact,
            dest: artifact,
            headers,
            logger: this.logger,
            ...this.options.download,
          });
        // The offer's download token spares the hub a password check; once it expired (a
        // device offline for long) the hub answers 401 and the device credential is used.
        if (!offer.downloadToken) await download(this.options.headers);
        else {
          await download({ authorization: `Bearer ${offer.downloadToken}` }).catch((err: unknown) => {
            if (!(err instanceof ArtifactDownloadError && err.status === 401)) throw err;
            this.logger.info('download token refused; downloading with the device credential', { offerId: offer.offerId });
            return download(this.options.headers);
          });
        }
      }
      await writeFileAtomic(path.join(dir, 'signed.json'), JSON.stringify(offer.signed));
    } catch (err) {
      const reason = err instanceof ArtifactDownloadError ? err.reason : 'download_failed';
      return this.reject(refOf(offer), reason, (err as Error).message);
    } finally {
      this.downloading = undefined;
    }
    // Cancelled while downloading: the queued command reports it.
    if (this.cancelRequested === manifest.modelVersion) return;
    this.report(refOf(offer), 'verified', {});

    const shadowFrames = offer.policy?.shadowFrames ?? this.options.shadowFrames;
    let head: ShadowableHead;
    try {
      head = await this.options.loadHead(artifact, manifest);
      if (head.modelVersion !== manifest.modelVersion) throw new Error(`loaded head says ${head.modelVersion}`);
      heads.setCandidate(head, shadowFrames);
    } catch (err) {
      return this.reject(refOf(offer), 'load_failed', (err as Error).message);
    }
    this.shadowing = { offer, manifest };
    this.report(refOf(offer), 'shadowing', {});
    // No shadow run asked for: nothing to wait for.
    if (shadowFrames === 0) await this.activate(offer, manifest, heads.candidate?.shadow, heads.candidate?.baseline);
  }

  private async handleCommand(cmd: ModelCommand): Promise<void> {
    const heads = this.options.heads;
    const ref: OfferRef = { offerId: cmd.offerId, modelVersion: cmd.modelVersion };
    this.logger.info('model command', { command: cmd.command, offerId: cmd.offerId, modelVersion: cmd.modelVersion });
    if (cmd.command === 'rollback' && heads.modelVersion === cmd.modelVersion) {
      if (heads.previousVersion === undefined) {
        this.report(ref, 'active', { detail: 'rollback refused: no previous head is kept on this device' });
        return;
      }
      await this.rollBack(ref, 'operator', `operator rollback to ${heads.previousVersion}`, {});
      return;
    }
    if (cmd.command === 'cancel' && heads.modelVersion === cmd.modelVersion) {
      this.report(ref, 'active', { detail: 'cancel ignored: the version is already active (send rollback)' });
      return;
    }
    const before = this.refused.get(cmd.offerId);
    if (before) {
      this.report(ref, before.state, { reason: 'operator', detail: `already ${before.state === 'rolled_back' ? 'rolled back' : 'cancelled'}` });
      return;
    }
    // A candidate (shadowing, verified, or a download that just ended), or an offer not seen yet:
    // dropped, and remembered so it is not installed later.
    const wasCandidate = heads.candidate?.modelVersion === cmd.modelVersion;
    if (wasCandidate) heads.dropCandidate();
    if (this.shadowing?.manifest.modelVersion === cmd.modelVersion) this.shadowing = undefined;
    if (this.cancelRequested === cmd.modelVersion) this.cancelRequested = undefined;
    await this.refused.add(cmd.offerId, cmd.modelVersion, 'rejected');
    this.count('operator');
    this.report(ref, 'rejected', { reason: 'operator', detail: wasCandidate ? `candidate ${cmd.modelVersion} dropped (operator ${cmd.command})` : `operator ${cmd.command}: ${cmd.modelVersion} is not installed here and will not be` });
  }

  private onShadowComplete(view: CandidateView): void {
    const s = this.shadowing;
    if (!s || s.manifest.modelVersion !== view.modelVersion) return;
    void this.enqueue(() => this.activate(s.offer, s.manifest, view.shadow, view.baseline), s.offer.offerId);
  }

  private onCandidateFailed(e: { modelVersion: string; err: unknown }): void {
    const s = this.shadowing;
    if (!s || s.manifest.modelVersion !== e.modelVersion) return;
    this.shadowing = undefined;
    this.reject(refOf(s.offer), 'load_failed', `head failed while shadowing: ${(e.err as Error).message}`);
  }

  private onHealthComplete(result: HealthWatchResult): void {
    const w = this.watching;
    if (!w || w.offer.signed.manifest.modelVersion !== result.modelVersion) return;
    this.watching = undefined;
    void this.enqueue(() => this.judgeHealth(w.offer, w.baseline, result), w.offer.offerId);
  }

  private async activate(offer: ModelOffer, manifest: RolloutManifest, shadow: ShadowStats | undefined, baseline: HealthBaseline | undefined): Promise<void> {
    const heads = this.options.heads;
    if (this.shadowing?.manifest.modelVersion !== manifest.modelVersion || heads.candidate?.modelVersion !== manifest.modelVersion) return;
    this.shadowing = undefined;
    const gateFailure = shadow ? shadowGateFailure(offer.policy?.shadowGate, shadow) : undefined;
    if (gateFailure) {
      heads.dropCandidate();
      return this.reject(refOf(offer), 'shadow_gate', gateFailure, shadow ? { shadow } : {});
    }
    const ref: HeadRef = { version: manifest.modelVersion, offerId: offer.offerId };
    // The commit point: once the pointer names the new head, a restart runs it.
    try {
      await this.writePointer(ref, this.current);
    } catch (err) {
      heads.dropCandidate();
      return this.reject(refOf(offer), 'load_failed', `could not record the activation: ${(err as Error).message}`);
    }
    heads.activate();
    this.previous = this.current;
    this.current = ref;
    await this.trust.record(manifest);
    this.activations += 1;
    this.report(refOf(offer), 'active', shadow ? { shadow } : {});
    const health = offer.policy?.health;
    if (health) {
      this.watching = { offer, baseline: baseline ?? { p95LatencyMs: 0, meanConfidence: 0 } };
      heads.watchHealth(health.frames);
    }
  }

  private async judgeHealth(offer: ModelOffer, baseline: HealthBaseline, result: HealthWatchResult): Promise<void> {
    if (this.options.heads.modelVersion !== result.modelVersion) return;
    const health: HealthStats = { frames: result.frames, p95LatencyMs: result.p95LatencyMs, meanConfidence: result.meanConfidence, baseline };
    const failure = healthFailure(offer.policy?.health, health);
    if (!failure) {
      this.report(refOf(offer), 'active', { health });
      return;
    }
    this.logger.warn('activated head regressed; rolling back', { modelVersion: result.modelVersion, detail: failure });
    await this.rollBack(refOf(offer), 'health_regression', failure, { health });
  }

  /**
   * Return to the previous head: remember the offer (durable), move the pointer to the
   * previous head (atomic), swap. A kill between the two writes is finished at start.
   */
  private async rollBack(ref: OfferRef, reason: ModelRejectReason, detail: string, extra: Pick<RolloutStatus, 'health'>): Promise<void> {
    const heads = this.options.heads;
    const previous = this.previous;
    if (previous) await this.verifyStored(previous.version);
    await this.refused.add(ref.offerId, ref.modelVersion, 'rolled_back');
    await this.writePointer(previous, undefined);
    heads.rollback();
    this.current = previous;
    this.previous = undefined;
    this.rollbacks += 1;
    this.count(reason);
    this.report(ref, 'rolled_back', { reason, detail: detail.slice(0, 500), ...extra });
  }

  private async writePointer(active: HeadRef | undefined, previous: HeadRef | undefined): Promise<void> {
    const pointer: z.infer<typeof PointerSchema> = { v: 1, ...(active ? { version: active.version, offerId: active.offerId } : {}), ...(previous ? { previous } : {}) };
    await writeFileAtomic(this.pointerFile, JSON.stringify(pointer));
  }

  /** Bring back the heads the pointer names; on any failure stay on the configured head and say so. */
  private async restore(): Promise<void> {
    let pointer: z.infer<typeof PointerSchema>;
    try {
      pointer = PointerSchema.parse(JSON.parse(await fsp.readFile(this.pointerFile, 'utf8')));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.logger.error('active head pointer unreadable; staying on the configured head', { err });
      return;
    }
    if (pointer.offerId && pointer.version && this.refused.get(pointer.offerId)?.state === 'rolled_back') {
      // A rollback was interrupted after the offer was remembered: finish it.
      this.logger.warn('finishing an interrupted rollback', { from: pointer.version, to: pointer.previous?.version ?? '(configured head)' });
      pointer = { v: 1, ...(pointer.previous ? { version: pointer.previous.version, offerId: pointer.previous.offerId } : {}) };
      await this.writePointer(pointer.version && pointer.offerId ? { version: pointer.version, offerId: pointer.offerId } : undefined, undefined);
    }
    if (!pointer.version || !pointer.offerId) return;
    const heads = this.options.heads;
    const active: HeadRef = { version: pointer.version, offerId: pointer.offerId };
    if (pointer.previous) {
      // The head kept for rollback; without it the device can only roll back to the configured head.
      try {
        const head = await this.loadStored(pointer.previous.version);
        heads.setCandidate(head, 0);
        heads.activate();
        this.current = pointer.previous;
      } catch (err) {
        this.logger.warn('could not restore the previous head; a rollback returns to the configured head', { modelVersion: pointer.previous.version, err });
      }
    }
    try {
      const head = await this.loadStored(active.version);
      heads.setCandidate(head, 0);
      heads.activate();
      this.previous = this.current;
      this.current = active;
      this.logger.info('restored the active head', { modelVersion: active.version });
    } catch (err) {
      this.logger.error('could not restore the active head; rolled back to the configured head', { modelVersion: active.version, err });
      if (this.current) heads.rollback();
      this.current = undefined;
      this.previous = undefined;
      await this.writePointer(undefined, undefined);
      this.count('load_failed');
      this.queue({
        offerId: active.offerId,
        modelVersion: active.version,
        state: 'rolled_back',
        reason: 'load_failed',
        detail: (err as Error).message.slice(0, 500),
        at: this.now().toISOString(),
        activeVersion: heads.modelVersion,
      });
    }
  }

  /** Verify a stored head again (signature by a trusted key, backbone, artifact sha256); returns its manifest. */
  private async verifyStored(version: string): Promise<RolloutManifest> {
    const dir = path.join(this.modelsDir, version);
    const raw: unknown = JSON.parse(await fsp.readFile(path.join(dir, 'signed.json'), 'utf8'));
    const signed: SignedManifest = SignedManifestSchema.parse(raw);
    // Expiry limits offers; a head already installed keeps running past it (and past its key
    // list's expiry), but not once its key was revoked: it must be named by the list held.
    const v = verifySignedManifest(signed, this.trust.keyList?.keys ?? new Map(), new Date(signed.manifest.issuedAt));
    if (!v.ok) throw new Error(`stored manifest: ${v.message}`);
    const m = v.manifest;
    if (m.modelVersion !== version) throw new Error(`stored manifest names ${m.modelVersion}`);
    if (m.backbone.id !== this.options.backbone.id || m.backbone.checksum !== this.options.backbone.checksum) throw new Error('stored head is for another backbone');
    if (!(await this.alreadyHave(path.join(dir, 'artifact'), m))) throw new Error('stored artifact does not match its manifest');
    return m;
  }

  private async loadStored(version: string): Promise<ShadowableHead> {
    const m = await this.verifyStored(version);
    const head = await this.options.loadHead(path.join(this.modelsDir, version, 'artifact'), m);
    await this.trust.record(m);
    return head;
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

  private reject(ref: OfferRef, reason: ModelRejectReason, message: string, extra: Pick<RolloutStatus, 'shadow'> = {}): void {
    this.count(reason);
    this.logger.warn('model offer refused', { offerId: ref.offerId, modelVersion: ref.modelVersion, reason, detail: message });
    this.report(ref, 'rejected', { reason, detail: message.slice(0, 500), ...extra });
  }

  private count(reason: ModelRejectReason): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
  }

  private report(ref: OfferRef, state: RolloutStatus['state'], extra: Pick<RolloutStatus, 'reason' | 'detail' | 'shadow' | 'health'>): void {
    this.queue({
      offerId: ref.offerId,
      modelVersion: ref.modelVersion,
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
