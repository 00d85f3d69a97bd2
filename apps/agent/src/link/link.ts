import { EventEmitter } from 'node:events';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import {
  AckSchema,
  BirthSchema,
  DeathSchema,
  FrameRequestSchema,
  HeartbeatSchema,
  HUB_STATUS_TOPIC,
  HubStatusSchema,
  RELEASE_KEYS_TOPIC,
  ModelCommandSchema,
  ModelOfferSchema,
  RolloutStatusSchema,
  MAX_DETECTIONS_PER_BATCH,
  SCHEMA_VERSION,
  deviceTopic,
  encodePayload,
  parsePayload,
  type Birth,
  type Detection,
  type Heartbeat,
  type RolloutStatus,
} from '@shelfsight/contracts';
import { silentLogger, withTimeout, type Logger } from '@shelfsight/common';
import type { Outbox } from '../outbox/outbox';
import { FlowWindow } from './flow-window';
import { lingerDecision } from './linger';

export interface LinkOptions {
  url: string;
  deviceId: string;
  username?: string;
  password?: string;
  /** PEM CA certificate(s) that signed the broker's TLS certificate (mqtts://), beside the system's. */
  ca?: Buffer;
  batchSize: number;
  /** A batch smaller than `batchSize` waits up to this long for more detections, ms (0: publish at once). */
  lingerMs?: number;
  /** Ceiling of the in-flight window (the hub's window and the congestion window may be smaller). */
  maxInFlight: number;
  ackTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Built fresh for every (re)connect. */
  birth: () => Omit<Birth, 'v' | 'deviceId' | 'epoch'>;
  logger?: Logger;
}

export interface LinkCounters {
  connects: number;
  disconnects: number;
  batchesSent: number;
  detectionsSent: number;
  /** Detections published again (after an ack timeout, a reconnect, a hub restart or a deferral). */
  retransmits: number;
  acksReceived: number;
  acksMalformed: number;
  /** Acks for another sequence epoch (this device's storage was replaced): ignored. */
  acksOtherEpoch: number;
  detectionsAcked: number;
  /** Detections the hub deferred (over capacity): published again after its retry-after. */
  detectionsDeferred: number;
  /** Times the window was halved (ack timeout or a hub retry-after). */
  windowDecreases: number;
  connectErrors: number;
  authFailures: number;
  /** `model-command` messages that failed validation or named another device: ignored. */
  commandsMalformed: number;
}

/**
 * The MQTT link: publishes the outbox to the hub and removes what the hub acknowledges.
 *
 * - Birth (QoS 1) on every connect; death `lost` as the MQTT last will; death
 *   `shutdown` on a clean stop.
 * - Detections in sequence order, batches of at most `batchSize`; a smaller batch lingers
 *   up to `lingerMs` for more ({@link lingerDecision}). QoS 1, at most the flow window
 *   unacknowledged ({@link FlowWindow}: the hub's `window` from its last ack, and a
 *   congestion window that grows with acks and halves on timeouts, capped by
 *   `maxInFlight`). On every (re)connect the unacked detections are published again
 *   from the oldest; those not acked within `ackTimeoutMs` leave the window and go out
 *   again after a jittered hold, as far as the (halved) window allows (the timeout doubles
 *   while the hub stays silent). Detections the hub defers (an ack's `deferred`) go out
 *   again after its `retryAfterMs`. Nothing leaves the outbox unacknowledged. The hub
 *   deduplicates by (device, epoch, seq). Acks name the outbox's epoch; acks for another
 *   are ignored.
 * - Acks on the device's own ack topic, validated with the contract schema; malformed
 *   ones are counted and ignored.
 * - Reconnect with exponential backoff and jitter, forever, until stopped.
 *
 * Events: `connected`, `disconnected`, `acked` (seqs), `frame-request` (FrameRequest), `model-offer` (ModelOffer), `model-offer-invalid` (reason),
 * `model-command` (ModelCommand; malformed ones are counted in `commandsMalformed` and dropped), `release-keys` (the retained key list, unverified).
 */
export class Link extends EventEmitter {
  private client: MqttClient | undefined;
  private readonly inFlight = new Map<number, number>();
  /**
   * Durable detections not yet published, in seq order, from `unsentHead` on: new ones are
   * appended as the outbox adds them, so publishing costs the same however many are in
   * flight. Whenever the in-flight window is dropped (reconnect, hub back, ack timeout),
   * `rescan` rebuilds it from the outbox.
   */
  private unsent: number[] = [];
  /** When each of `unsent` became ready (0 for a retransmission: no linger). */
  private unsentAt: number[] = [];
  private unsentHead = 0;
  private readonly flow: FlowWindow;
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumpTimerAt = 0;
  /** Highest seq published by this process (see `retransmits`). */
  private highestSent = 0;
  private rescan = true;
  private attempt = 0;
  /** Ack-timeout rounds in a row without any ack from the hub. */
  private silentRounds = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private isConnected = false;
  private readonly logger: Logger;
  readonly counters: LinkCounters = {
    connects: 0,
    disconnects: 0,
    batchesSent: 0,
    detectionsSent: 0,
    retransmits: 0,
    acksReceived: 0,
    acksMalformed: 0,
    acksOtherEpoch: 0,
    detectionsAcked: 0,
    detectionsDeferred: 0,
    windowDecreases: 0,
    connectErrors: 0,
    authFailures: 0,
    commandsMalformed: 0,
  };

  constructor(
    private readonly options: LinkOptions,
    private readonly outbox: Outbox,
  ) {
    super();
    this.logger = (options.logger ?? silentLogger).child({ part: 'link' });
    const batch = Math.min(options.batchSize, MAX_DETECTIONS_PER_BATCH);
    this.flow = new FlowWindow({
      max: options.maxInFlight,
      min: Math.min(options.maxInFlight, batch),
      initial: Math.min(options.maxInFlight, 4 * batch),
      step: batch,
      backoffMs: Math.min(1000, Math.max(50, Math.floor(options.ackTimeoutMs / 4))),
      maxBackoffMs: options.ackTimeoutMs,
    });
    this.outbox.on('added', this.onAdded);
  }

  get connected(): boolean {
    return this.isConnected;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Detections that may be in flight now (the flow window). */
  get window(): number {
    return this.flow.size;
  }

  start(): void {
    const { deviceId } = this.options;
    const opts: IClientOptions = {
      clientId: deviceId,
      username: this.options.username,
      password: this.options.password,
      ...(this.options.ca ? { ca: this.options.ca } : {}),
      clean: true,
      reconnectPeriod: 0, // reconnects are ours: exponential backoff with jitter
      connectTimeout: 10_000,
      keepalive: 30,
      queueQoSZero: false,
      will: {
        topic: deviceTopic(deviceId, 'death'),
        payload: encodePayload(DeathSchema, { v: SCHEMA_VERSION, deviceId, reason: 'lost' }),
        qos: 1,
        retain: false,
      },
    };
    const client = connect(this.options.url, opts);
    this.client = client;
    client.on('connect', () => void this.onConnect());
    client.on('close', () => this.onClose());
    client.on('error', (err) => this.onError(err));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    const tick = Math.max(50, Math.min(1000, Math.floor(this.options.ackTimeoutMs / 2)));
    this.ackTimer = setInterval(() => this.expireInFlight(), tick);
  }

  private async onConnect(): Promise<void> {
    const client = this.client;
    if (!client) return;
    const { deviceId } = this.options;
    this.attempt = 0;
    this.silentRounds = 0;
    this.counters.connects++;
    this.inFlight.clear();
    this.flow.reset();
    this.rescan = true;
    try {
      await client.subscribeAsync([deviceTopic(deviceId, 'ack'), deviceTopic(deviceId, 'frame-request'), RELEASE_KEYS_TOPIC, deviceTopic(deviceId, 'model-offer'), deviceTopic(deviceId, 'model-command'), HUB_STATUS_TOPIC], { qos: 1 });
      const birth: Birth = { v: SCHEMA_VERSION, deviceId, epoch: this.outbox.epoch, ...this.options.birth() };
      await client.publishAsync(deviceTopic(deviceId, 'birth'), encodePayload(BirthSchema, birth), { qos: 1 });
    } catch (err) {
      this.logger.warn('subscribe/birth failed; waiting for reconnect', { err });
      return;
    }
    if (!client.connected) return;
    this.isConnected = true;
    this.logger.info('connected', { url: this.options.url, pending: this.outbox.depth });
    this.emit('connected');
    this.pump();
  }

  private onError(err: Error & { code?: string | number }): void {
    this.counters.connectErrors++;
    // CONNACK 4/5 (MQTT 3.1.1) or 134/135 (MQTT 5): the broker refused this device's credentials.
    if (err.code === 4 || err.code === 5 || err.code === 134 || err.code === 135) {
      this.counters.authFailures++;
      this.logger.error('broker refused the device credentials (MQTT_USERNAME / MQTT_PASSWORD); retrying with backoff', {
        err,
        url: this.options.url,
      });
      return;
    }
    this.logger.warn('mqtt error', { err, url: this.options.url });
  }

  private onClose(): void {
    const was = this.isConnected;
    this.isConnected = false;
    this.inFlight.clear();
    this.rescan = true;
    if (was) {
      this.counters.disconnects++;
      this.logger.warn('disconnected', { pending: this.outbox.depth });
      this.emit('disconnected');
    }
    if (this.stopping || this.reconnectTimer) return;
    const base = Math.min(this.options.reconnectMaxMs, this.options.reconnectMinMs * 2 ** Math.min(this.attempt, 20));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopping) this.client?.reconnect();
    }, delay);
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (this.onRolloutMessage(topic, payload)) return;
    if (topic === deviceTopic(this.options.deviceId, 'frame-request')) {
      const req = parsePayload(FrameRequestSchema, payload);
      if (req.ok && req.value.deviceId === this.options.deviceId) this.emit('frame-request', req.value);
      else this.logger.warn('ignored malformed frame request', { detail: req.ok ? req.value.deviceId : req.message });
      return;
    }
    if (topic === HUB_STATUS_TOPIC) {
      // A hub (re)subscribed: whatever is in flight may have been published into the void
      // while no hub listened. Send it again now rather than after the ack timeout.
      if (parsePayload(HubStatusSchema, payload).ok && this.inFlight.size > 0) {
        this.logger.info('hub online; publishing unacknowledged detections again', { inFlight: this.inFlight.size });
        this.inFlight.clear();
        this.rescan = true;
        this.silentRounds = 0;
        this.pump();
      }
      return;
    }
    if (topic !== deviceTopic(this.options.deviceId, 'ack')) return;
    const parsed = parsePayload(AckSchema, payload);
    if (!parsed.ok || parsed.value.deviceId !== this.options.deviceId) {
      this.counters.acksMalformed++;
      this.logger.warn('ignored malformed ack', {
        reason: parsed.ok ? 'device_mismatch' : parsed.reason,
        detail: parsed.ok ? parsed.value.deviceId : parsed.message,
      });
      return;
    }
    if (parsed.value.epoch !== this.outbox.epoch) {
      this.counters.acksOtherEpoch++;
      this.logger.warn('ignored an ack for another sequence epoch', { epoch: parsed.value.epoch, ours: this.outbox.epoch });
      return;
    }
    const ack = parsed.value;
    this.counters.acksReceived++;
    this.silentRounds = 0;
    this.flow.onHubWindow(ack.window);
    for (const seq of ack.seqs) this.inFlight.delete(seq);
    if (ack.deferred && ack.deferred.length > 0) {
      // Not taken by the hub: out of the window, published again after its retry-after.
      let back = 0;
      for (const seq of ack.deferred) if (this.inFlight.delete(seq) && this.outbox.has(seq)) back++;
      this.counters.detectionsDeferred += back;
      this.flow.onRetryAfter(ack.retryAfterMs ?? 0);
      this.counters.windowDecreases = this.flow.decreases;
      if (back > 0) this.rescan = true;
    } else if (ack.retryAfterMs !== undefined && ack.retryAfterMs > 0) {
      this.flow.onRetryAfter(ack.retryAfterMs);
      this.counters.windowDecreases = this.flow.decreases;
    }
    const removed = ack.seqs.length > 0 ? this.outbox.ack(ack.seqs) : [];
    this.counters.detectionsAcked += removed.length;
    this.flow.onAcked(removed.length);
    if (removed.length > 0) this.emit('acked', removed);
    this.pump();
  }

  private pumpScheduled = false;

  /** New detections arrive in bursts: publish them once per turn of the event loop, not once each. */
  private readonly onAdded = (detection: Detection): void => {
    if (!this.rescan) {
      this.unsent.push(detection.seq);
      this.unsentAt.push(Date.now());
    }
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  };

  /**
   * Publish pending detections in seq order while the flow window has room: full batches
   * at once, a partial one when its oldest detection has lingered `lingerMs`.
   */
  private pump(): void {
    const client = this.client;
    if (!client || !this.isConnected || this.stopping) return;
    if (this.rescan) {
      this.unsent = [];
      this.unsentAt = [];
      this.unsentHead = 0;
      // Everything found here was ready before now (retransmissions among it): no linger.
      for (const seq of this.outbox.pendingSeqs()) {
        if (this.inFlight.has(seq)) continue;
        this.unsent.push(seq);
        this.unsentAt.push(0);
      }
      this.rescan = false;
    }
    const hold = this.flow.holdMs();
    if (hold > 0) {
      this.wakeIn(hold);
      return;
    }
    const batchSize = Math.min(this.options.batchSize, MAX_DETECTIONS_PER_BATCH);
    const lingerMs = this.options.lingerMs ?? 0;
    const topic = deviceTopic(this.options.deviceId, 'detections');
    // The fixed part of every batch; the detections are the outbox's own JSON of each,
    // so a batch is put together, not serialised again. Not re-validated here: each
    // detection was validated when the pipeline made it and numbered by the outbox, and
    // the batch (1..MAX, distinct seqs) holds by construction.
    const head = `{"v":${SCHEMA_VERSION},"deviceId":${JSON.stringify(this.options.deviceId)},"epoch":${JSON.stringify(this.outbox.epoch)},"sentAt":`;
    const now = Date.now();
    for (;;) {
      // Skip what was acknowledged or published meanwhile.
      while (this.unsentHead < this.unsent.length) {
        const seq = this.unsent[this.unsentHead]!;
        if (!this.inFlight.has(seq) && this.outbox.has(seq)) break;
        this.unsentHead++;
      }
      const decision = lingerDecision({
        unsent: this.unsent.length - this.unsentHead,
        oldestAgeMs: now - (this.unsentAt[this.unsentHead] ?? now),
        room: this.flow.size - this.inFlight.size,
        // A window smaller than a batch makes the batch: waiting for room for more would wait for nothing.
        batchSize: Math.max(1, Math.min(batchSize, this.flow.size)),
        lingerMs,
      });
      if ('waitMs' in decision) {
        this.wakeIn(decision.waitMs);
        break;
      }
      if ('blocked' in decision || decision.take === 0) break;
      const seqs: number[] = [];
      const parts: string[] = [];
      while (seqs.length < decision.take && this.unsentHead < this.unsent.length) {
        const seq = this.unsent[this.unsentHead++]!;
        const json = this.inFlight.has(seq) ? undefined : this.outbox.jsonOf(seq);
        if (json === undefined) continue; // acked meanwhile, or already out
        seqs.push(seq);
        parts.push(json);
      }
      if (seqs.length === 0) break;
      for (const seq of seqs) {
        this.inFlight.set(seq, now);
        // Fresh detections go out in seq order: one at or below the highest sent is a repeat.
        if (seq <= this.highestSent) this.counters.retransmits++;
        else this.highestSent = seq;
      }
      const payload = Buffer.from(`${head}"${new Date(now).toISOString()}","detections":[${parts.join(',')}]}`);
      this.counters.batchesSent++;
      this.counters.detectionsSent += seqs.length;
      client.publish(topic, payload, { qos: 1 }, (err) => {
        if (err) this.logger.debug('publish not confirmed', { err });
      });
    }
    if (this.unsentHead > 4096 && this.unsentHead * 2 > this.unsent.length) {
      this.unsent = this.unsent.slice(this.unsentHead);
      this.unsentAt = this.unsentAt.slice(this.unsentHead);
      this.unsentHead = 0;
    }
  }

  /** Pump again in `ms` (the linger or a hold), unless a pump is already due by then. */
  private wakeIn(ms: number): void {
    const at = Date.now() + Math.max(1, Math.ceil(ms));
    if (this.pumpTimer && this.pumpTimerAt <= at) return;
    clearTimeout(this.pumpTimer);
    this.pumpTimerAt = at;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, at - Date.now());
  }

  /**
   * Detections not acknowledged within the ack timeout leave the window: it is halved and
   * they go out again after a jittered hold, as far as the smaller window allows.
   */
  private expireInFlight(): void {
    if (!this.isConnected || this.inFlight.size === 0) return;
    // A hub that does not ack (its database is down, say) is not hammered: the timeout
    // doubles with every round without any ack, up to 32x, and resets on the next ack.
    const cutoff = Date.now() - this.options.ackTimeoutMs * 2 ** Math.min(this.silentRounds, 5);
    let expired = 0;
    for (const [seq, sentAt] of this.inFlight) {
      if (sentAt <= cutoff || !this.outbox.has(seq)) {
        this.inFlight.delete(seq);
        if (this.outbox.has(seq)) expired++;
      }
    }
    if (expired > 0) {
      this.rescan = true;
      this.silentRounds++;
      this.flow.onTimeout();
      this.counters.windowDecreases = this.flow.decreases;
      this.logger.debug('ack timeout; publishing again', { expired, window: this.flow.size });
      this.pump();
    }
  }

  /** Publish a heartbeat (QoS 0) if connected. */
  heartbeat(hb: Omit<Heartbeat, 'v' | 'deviceId' | 'sentAt'>): void {
    if (!this.isConnected || !this.client) return;
    const payload = encodePayload(HeartbeatSchema, {
      v: SCHEMA_VERSION,
      deviceId: this.options.deviceId,
      sentAt: new Date().toISOString(),
      ...hb,
    });
    this.client.publish(deviceTopic(this.options.deviceId, 'heartbeat'), payload, { qos: 0 });
  }

  /**
   * Rollouts: a `model-offer` for this device is emitted as `model-offer` (ModelOffer) when
   * valid, as `model-offer-invalid` (reason text) when not; a valid `model-command` as
   * `model-command` (ModelCommand). Returns false for other topics.
   */
  private onRolloutMessage(topic: string, payload: Buffer): boolean {
    if (topic === RELEASE_KEYS_TOPIC) {
      // The root-signed release key list: the rollout agent verifies it (an empty retained message clears nothing on the device).
      if (payload.length === 0) return true;
      let raw: unknown;
      try {
        raw = JSON.parse(payload.toString('utf8'));
      } catch {
        raw = payload.toString('utf8').slice(0, 200);
      }
      this.emit('release-keys', raw);
      return true;
    }
    if (topic === deviceTopic(this.options.deviceId, 'model-command')) {
      const cmd = parsePayload(ModelCommandSchema, payload);
      if (cmd.ok && cmd.value.deviceId === this.options.deviceId) {
        this.emit('model-command', cmd.value);
      } else {
        this.counters.commandsMalformed++;
        this.logger.warn('ignored malformed model command', { reason: cmd.ok ? 'device_mismatch' : cmd.reason, detail: cmd.ok ? cmd.value.deviceId : cmd.message });
      }
      return true;
    }
    if (topic !== deviceTopic(this.options.deviceId, 'model-offer')) return false;
    // An empty retained message clears an offer on the broker: nothing to do.
    if (payload.length === 0) return true;
    const offer = parsePayload(ModelOfferSchema, payload);
    if (offer.ok && offer.value.deviceId === this.options.deviceId) this.emit('model-offer', offer.value);
    else this.emit('model-offer-invalid', offer.ok ? `offer names device ${offer.value.deviceId}` : offer.message);
    return true;
  }

  /** Publish what became of a model offer (QoS 1); false when not connected (the caller re-sends on connect). */
  publishRolloutStatus(status: Omit<RolloutStatus, 'v' | 'deviceId'>): boolean {
    const payload = encodePayload(RolloutStatusSchema, { v: SCHEMA_VERSION, deviceId: this.options.deviceId, ...status });
    return this.publish(deviceTopic(this.options.deviceId, 'rollout-status'), payload, 1);
  }

  /** Publish an arbitrary device message (used by the samples channel). */
  publish(topic: string, payload: Buffer, qos: 0 | 1): boolean {
    if (!this.isConnected || !this.client) return false;
    this.client.publish(topic, payload, { qos });
    return true;
  }

  /**
   * Clean stop: wait up to `flushMs` for the hub to acknowledge what is pending, send
   * death `shutdown`, disconnect (no last will). Unacked detections stay in the outbox.
   */
  async stop(flushMs: number): Promise<void> {
    if (this.isConnected && this.outbox.depth > 0 && flushMs > 0) {
      await withTimeout(this.outbox.whenEmpty(), flushMs);
    }
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.pumpTimer);
    clearInterval(this.ackTimer);
    this.outbox.off('added', this.onAdded);
    const client = this.client;
    if (!client) return;
    if (this.isConnected) {
      const death = encodePayload(DeathSchema, { v: SCHEMA_VERSION, deviceId: this.options.deviceId, reason: 'shutdown' });
      await withTimeout(client.publishAsync(deviceTopic(this.options.deviceId, 'death'), death, { qos: 1 }).catch(() => undefined), 2000);
    }
    this.isConnected = false;
    // A graceful end waits for every outgoing QoS 1 publish to be acknowledged, and
    // publishes made to a broker that has since died never will be (the process would
    // then never exit). Drop them from the client first: the outbox still holds every
    // unacknowledged detection. The end stays graceful (DISCONNECT, so no last will).
    for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id));
    await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), 3000);
  }
}

