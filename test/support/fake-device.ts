import { connectAsync, type MqttClient } from 'mqtt';
import { AckSchema, deviceTopic, FrameRequestSchema, parsePayload, SCHEMA_VERSION, type Detection, type FrameRequest } from '@shelfsight/contracts';

/**
 * A bare MQTT client speaking the device contracts by hand, for tests that need to send
 * exactly the bytes they choose (duplicates, out-of-order, malformed payloads).
 */
export class FakeDevice {
  /** The sequence epoch of this device's (pretend) outbox. */
  epoch = 'epoch-1';
  /** Seqs of the current epoch the hub acknowledged. */
  readonly acked = new Set<number>();
  /** Every ack received, any epoch. */
  readonly acks: Array<{ epoch: string; seqs: number[] }> = [];
  /** Every frame request the hub sent this device. */
  readonly frameRequests: FrameRequest[] = [];
  /** Answers frame requests when set (tests choose: the frame, or not_held). */
  onFrameRequest?: (req: FrameRequest) => void | Promise<void>;
  private constructor(
    readonly id: string,
    private readonly client: MqttClient,
  ) {}

  static async connect(url: string, id: string, auth?: { username: string; password: string }): Promise<FakeDevice> {
    const client = await connectAsync(url, { clientId: `fake-${id}`, reconnectPeriod: 0, ...auth });
    const device = new FakeDevice(id, client);
    client.on('message', (topic, payload) => {
      if (topic === deviceTopic(id, 'frame-request')) {
        const req = parsePayload(FrameRequestSchema, payload);
        if (req.ok) {
          device.frameRequests.push(req.value);
          void device.onFrameRequest?.(req.value);
        }
        return;
      }
      const ack = parsePayload(AckSchema, payload);
      if (!ack.ok) return;
      device.acks.push({ epoch: ack.value.epoch, seqs: ack.value.seqs });
      if (ack.value.epoch === device.epoch) for (const s of ack.value.seqs) device.acked.add(s);
    });
    await client.subscribeAsync([deviceTopic(id, 'ack'), deviceTopic(id, 'frame-request')], { qos: 1 });
    return device;
  }

  async sendDetections(detections: Detection[]): Promise<void> {
    const batch = { v: SCHEMA_VERSION, deviceId: this.id, epoch: this.epoch, sentAt: new Date().toISOString(), detections };
    await this.sendRaw('detections', JSON.stringify(batch));
  }

  /** As after a wiped storage: a new epoch, whose seqs start again at 1. */
  startEpoch(epoch: string): void {
    this.epoch = epoch;
    this.acked.clear();
  }

  async sendRaw(channel: 'detections' | 'birth' | 'heartbeat' | 'death' | 'samples' | 'frame-reply', payload: string | Buffer): Promise<void> {
    await this.client.publishAsync(deviceTopic(this.id, channel), payload, { qos: 1 });
  }

  async waitForAcks(seqs: number[], timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!seqs.every((s) => this.acked.has(s))) {
      if (Date.now() > deadline) {
        throw new Error(`device ${this.id}: no ack for seqs ${seqs.filter((s) => !this.acked.has(s)).join(',')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Acks of `seq` in the current epoch received so far (a redelivered message is acked again). */
  ackCount(seq: number): number {
    return this.acks.filter((a) => a.epoch === this.epoch && a.seqs.includes(seq)).length;
  }

  /** Wait until `seq` was acked `times` times in all: each message carrying it was processed. */
  async waitForAckCount(seq: number, times: number, timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.ackCount(seq) < times) {
      if (Date.now() > deadline) throw new Error(`device ${this.id}: seq ${seq} acked ${this.ackCount(seq)} times, expected ${times}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}

let frameCounter = 0;
/** Default capture times: an hour ago plus `seq` seconds (fresh, so never stale). */
const CAPTURE_BASE = Math.floor(Date.now() / 1000) * 1000 - 3600_000;

/** A valid detection with sensible defaults. */
export function detection(seq: number, overrides: Partial<Detection> = {}): Detection {
  frameCounter += 1;
  return {
    seq,
    frameId: `frame-${seq}-${frameCounter}`,
    site: 'site-1',
    location: 'A-01-1-A',
    capturedAt: new Date(CAPTURE_BASE + seq * 1000).toISOString(),
    category: 'milk',
    confidence: 0.9,
    topK: [{ category: overrides.category ?? 'milk', confidence: overrides.confidence ?? 0.9 }],
    modelVersion: 'test-model',
    latencyMs: 12,
    ...overrides,
  };
}
