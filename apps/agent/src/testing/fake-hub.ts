import { connect, type MqttClient } from 'mqtt';
import {
  AckSchema,
  BirthSchema,
  DeathSchema,
  DetectionBatchSchema,
  FrameReplySchema,
  FrameRequestSchema,
  HeartbeatSchema,
  SampleSchema,
  SCHEMA_VERSION,
  allDevicesTopic,
  deviceTopic,
  encodePayload,
  parseDeviceTopic,
  parsePayload,
  type Birth,
  type Death,
  type Detection,
  type FrameReply,
  type Heartbeat,
  type Sample,
} from '@shelfsight/contracts';

const TOPICS = (['detections', 'birth', 'death', 'heartbeat', 'samples', 'frame-reply'] as const).map((c) => allDevicesTopic(c));

/**
 * A stand-in hub for agent tests: subscribes to every device's detections, keeps what
 * a real hub would store (deduplicated by (device, epoch, seq) and (device, frameId)) and
 * acknowledges each batch. Acks can be paused to let outboxes fill.
 */
export class FakeHub {
  /** Every detection received, duplicates included, in arrival order. */
  readonly received: Array<{ deviceId: string; epoch: string; detection: Detection }> = [];
  /** The sequence epoch each device sent last. */
  readonly epochs = new Map<string, string>();
  /** (device, seq) → frame id: what the hub committed per sequence number. */
  readonly bySeq = new Map<string, string>();
  /** (device, frameId) → detection first stored for it. */
  readonly byFrame = new Map<string, Detection>();
  /** Sequence numbers that arrived again with a different frame (must never happen). */
  readonly seqConflicts: string[] = [];
  readonly births: Birth[] = [];
  readonly deaths: Death[] = [];
  readonly samples: Sample[] = [];
  readonly heartbeats: Heartbeat[] = [];
  readonly frameReplies: FrameReply[] = [];
  acking = true;
  private client!: MqttClient;

  static async start(url: string): Promise<FakeHub> {
    const hub = new FakeHub();
    hub.client = connect(url, { clientId: `fake-hub-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 200 });
    hub.client.on('message', (topic, payload) => hub.onMessage(topic, payload));
    hub.client.on('error', () => undefined);
    hub.client.on('connect', () => {
      void hub.client.subscribeAsync(
        TOPICS,
        { qos: 1 },
      );
    });
    await new Promise<void>((resolve) => hub.client.once('connect', () => resolve()));
    await hub.client.subscribeAsync(TOPICS, { qos: 1 });
    return hub;
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsedTopic = parseDeviceTopic(topic);
    if (!parsedTopic) return;
    if (parsedTopic.channel === 'birth') {
      const b = parsePayload(BirthSchema, payload);
      if (b.ok) this.births.push(b.value);
      return;
    }
    if (parsedTopic.channel === 'heartbeat') {
      const h = parsePayload(HeartbeatSchema, payload);
      if (h.ok) this.heartbeats.push(h.value);
      return;
    }
    if (parsedTopic.channel === 'samples') {
      const s = parsePayload(SampleSchema, payload);
      if (s.ok) this.samples.push(s.value);
      return;
    }
    if (parsedTopic.channel === 'frame-reply') {
      const r = parsePayload(FrameReplySchema, payload);
      if (r.ok) this.frameReplies.push(r.value);
      return;
    }
    if (parsedTopic.channel === 'death') {
      const d = parsePayload(DeathSchema, payload);
      if (d.ok) this.deaths.push(d.value);
      return;
    }
    if (parsedTopic.channel !== 'detections') return;
    const batch = parsePayload(DetectionBatchSchema, payload);
    if (!batch.ok) return;
    const { deviceId, epoch, detections } = batch.value;
    this.epochs.set(deviceId, epoch);
    for (const d of detections) {
      this.received.push({ deviceId, epoch, detection: d });
      const seqKey = `${deviceId}#${epoch}#${d.seq}`;
      const prior = this.bySeq.get(seqKey);
      if (prior !== undefined && prior !== d.frameId) this.seqConflicts.push(`${seqKey}: ${prior} vs ${d.frameId}`);
      if (prior === undefined) this.bySeq.set(seqKey, d.frameId);
      const frameKey = `${deviceId}#${d.frameId}`;
      if (!this.byFrame.has(frameKey)) this.byFrame.set(frameKey, d);
    }
    if (this.acking) this.ack(deviceId, detections.map((d) => d.seq), epoch);
  }

  /** Acknowledge seqs of `epoch` (default: the epoch the device sent last). */
  ack(deviceId: string, seqs: number[], epoch = this.epochs.get(deviceId) ?? 'unknown'): void {
    this.client.publish(
      deviceTopic(deviceId, 'ack'),
      encodePayload(AckSchema, { v: SCHEMA_VERSION, deviceId, epoch, seqs, committedAt: new Date().toISOString() }),
      { qos: 1 },
    );
  }

  /** Ask a device for one of its recent frames. */
  requestFrame(deviceId: string, requestId: string, frameId: string): Promise<unknown> {
    return this.client.publishAsync(
      deviceTopic(deviceId, 'frame-request'),
      encodePayload(FrameRequestSchema, { v: SCHEMA_VERSION, deviceId, requestId, frameId }),
      { qos: 1 },
    );
  }

  /** Publish raw bytes to a device's ack topic (malformed-ack tests). */
  publishRaw(deviceId: string, payload: string | Buffer): Promise<unknown> {
    return this.client.publishAsync(deviceTopic(deviceId, 'ack'), payload, { qos: 1 });
  }

  /** Frames stored for a device (deduplicated). */
  framesOf(deviceId: string): Detection[] {
    return [...this.byFrame.entries()].filter(([k]) => k.startsWith(`${deviceId}#`)).map(([, d]) => d);
  }

  async stop(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** Poll `check` until it returns true or the deadline passes (no fixed sleeps in tests). */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  state?: () => unknown,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state ? `; state: ${JSON.stringify(state())}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
