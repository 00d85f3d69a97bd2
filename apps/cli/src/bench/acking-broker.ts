import { createServer, type AddressInfo } from 'node:net';
import { createBroker } from 'aedes';
import { deviceTopic, parseDeviceTopic, SCHEMA_VERSION, type Ack } from '@shelfsight/contracts';

export interface AckingBroker {
  url: string;
  /** Detections acknowledged, and when the first and last batch arrived (performance.now()). */
  stats(): { detections: number; firstAt?: number; lastAt?: number };
  stop(): Promise<void>;
}

/**
 * An aedes broker that nobody subscribes to for detections: it answers each detection
 * batch itself with an ack of its seqs (no validation, no database), so that a fleet's
 * outboxes drain as they would with a hub. What a fleet can publish on its own.
 */
export async function startAckingBroker(): Promise<AckingBroker> {
  const broker = createBroker();
  const counts: { detections: number; firstAt?: number; lastAt?: number } = { detections: 0 };
  broker.on('publish', (packet, client) => {
    if (!client) return; // the broker's own publishes (the acks, $SYS)
    const topic = parseDeviceTopic(packet.topic);
    if (topic?.channel !== 'detections') return;
    const batch = JSON.parse(packet.payload.toString()) as { epoch: string; detections: Array<{ seq: number }> };
    const now = performance.now();
    counts.firstAt ??= now;
    counts.lastAt = now;
    counts.detections += batch.detections.length;
    const ack: Ack = { v: SCHEMA_VERSION, deviceId: topic.deviceId, epoch: batch.epoch, seqs: batch.detections.map((d) => d.seq), committedAt: new Date().toISOString() };
    broker.publish({ cmd: 'publish', topic: deviceTopic(topic.deviceId, 'ack'), payload: Buffer.from(JSON.stringify(ack)), qos: 1, retain: false, dup: false }, () => undefined);
  });
  const server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    stats: () => ({ ...counts }),
    async stop() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
