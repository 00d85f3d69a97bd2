import { randomBytes } from 'node:crypto';
import { type DynamicModule, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Detection } from '@shelfsight/contracts';
import { DEVICE_LINK, MqttDeviceLink } from '../broker/device-link';
import { HubMqttServer } from '../broker/hub-mqtt.server';
import { startEmbeddedBroker } from '../broker/embedded-broker';
import { HUB_CONFIG, loadHubConfig } from '../config/hub-config';
import { EventBus } from '../events/event-bus';
import { HubMetrics } from '../metrics/hub-metrics';
import { RejectionRecorder } from '../metrics/rejection-recorder';
import { PrismaService } from '../prisma/prisma.service';
import { CommittedDetections } from './committed-detections';
import { DetectionWriter, type CommitOutcome } from './detection-writer';
import { IngestController } from './ingest.controller';
import { IngestRepository, type IngestMessage } from './ingest.repository';
import { IngestService } from './ingest.service';

/*
 * The ingest path cut into stages, each run alone in the calling process, so that a
 * benchmark can tell which stage limits the whole (`shelf bench ingest`).
 */

/** Messages of `batchSize` detections from `devices` devices, as a simulated fleet would send them. */
export function buildIngestMessages(devices: number, perDevice: number, batchSize: number, site: string): IngestMessage[] {
  const locations: string[] = [];
  for (const aisle of ['A', 'B', 'C']) for (let rack = 1; rack <= 4; rack++) for (let shelf = 1; shelf <= 3; shelf++) for (const bin of ['A', 'B']) locations.push(`${aisle}-0${rack}-${shelf}-${bin}`);
  const categories = ['apples', 'bananas', 'bread', 'cheese', 'juice', 'milk', 'oranges', 'yogurt'];
  const run = randomBytes(4).toString('hex');
  const base = Date.now() - 3600_000;
  const messages: IngestMessage[] = [];
  for (let dev = 1; dev <= devices; dev++) {
    const deviceId = `stage-${run}-${dev}`;
    for (let from = 1; from <= perDevice; from += batchSize) {
      const detections: Detection[] = [];
      for (let seq = from; seq < from + batchSize && seq <= perDevice; seq++) {
        const n = dev * 7 + seq;
        const category = categories[n % categories.length]!;
        const confidence = 0.4 + (n % 60) / 100;
        detections.push({
          seq,
          frameId: `${run}-${dev}-${seq}`,
          site,
          location: locations[n % locations.length]!,
          capturedAt: new Date(base + seq * 10).toISOString(),
          category,
          confidence,
          topK: [
            { category, confidence },
            { category: categories[(n + 1) % categories.length]!, confidence: (1 - confidence) / 2 },
          ],
          modelVersion: 'stage-1',
          latencyMs: 0.2,
        });
      }
      messages.push({ deviceId, epoch: `e${run}`, detections });
    }
  }
  return messages;
}

export interface WriterStageResult {
  /** Detections submitted (the caller counts what the database holds). */
  detections: number;
  seconds: number;
}

/**
 * Stage (a): the writer and its SQL fed directly with pre-built messages (no MQTT, no
 * decoding), as fast as it takes them: what the database path alone sustains.
 */
export async function runWriterStage(databaseUrl: string, messages: IngestMessage[], env: Record<string, string> = {}): Promise<WriterStageResult> {
  const config = loadHubConfig({}, { ...env, DATABASE_URL: databaseUrl });
  const prisma = new PrismaService(config);
  const metrics = new HubMetrics();
  const writer = new DetectionWriter(config, new IngestRepository(prisma), metrics, new CommittedDetections());
  const started = performance.now();
  let detections = 0;
  const inFlight = new Set<Promise<CommitOutcome>>();
  try {
    for (const m of messages) {
      for (;;) {
        const commit = writer.submit(m.deviceId, m.epoch, m.detections);
        if (commit) {
          detections += m.detections.length;
          inFlight.add(commit);
          void commit.finally(() => inFlight.delete(commit));
          break;
        }
        await Promise.race(inFlight); // full: wait for a commit to make room, as a device would resend later
      }
    }
    await Promise.all(inFlight);
    return { detections, seconds: (performance.now() - started) / 1000 };
  } finally {
    await writer.onModuleDestroy();
    await prisma.onModuleDestroy();
  }
}

/** Counts what the stub writer took: the stage's throughput. */
export interface DecodeStageStats {
  detections: number;
  firstAt?: number;
  lastAt?: number;
}

export interface DecodeStage {
  mqttUrl: string;
  stats(): DecodeStageStats;
  stop(): Promise<void>;
}

/** Writer stand-in for stage (b): counts and "commits" at once. */
class AckingWriter {
  readonly counts: DecodeStageStats = { detections: 0 };

  load(): { rows: number; bytes: number } {
    return { rows: 0, bytes: 0 };
  }

  submit(_deviceId: string, _epoch: string, detections: Detection[]): Promise<CommitOutcome> {
    const now = performance.now();
    this.counts.firstAt ??= now;
    this.counts.lastAt = now;
    this.counts.detections += detections.length;
    return Promise.resolve({ stored: detections.length, duplicates: 0, stateChanges: 0, seqConflicts: 0, deadLettered: 0 });
  }
}

@Module({})
class DecodeStageModule {
  static forRoot(link: MqttDeviceLink, writer: AckingWriter): DynamicModule {
    return {
      module: DecodeStageModule,
      controllers: [IngestController],
      // Everything IngestService injects (events to nobody: no SSE clients in a stage run).
      providers: [
        IngestService, HubMetrics, RejectionRecorder, { provide: EventBus, useFactory: () => new EventBus() },
        { provide: DEVICE_LINK, useValue: link }, { provide: DetectionWriter, useValue: writer },
        { provide: HUB_CONFIG, useValue: loadHubConfig({}, {}) },
      ],
    };
  }
}

/**
 * Stage (b): the embedded broker and the hub's MQTT ingest (transport, decode, validate,
 * ack) with the writer replaced by one that acknowledges at once: what broker + hub
 * decoding alone sustain. Devices connect to `mqttUrl`.
 */
export async function startDecodeStage(): Promise<DecodeStage> {
  const broker = await startEmbeddedBroker(0, '127.0.0.1');
  const server = new HubMqttServer({ url: broker.url, clientId: `shelfsight-hub-stage-${randomBytes(3).toString('hex')}`, protocolVersion: 4, subscribeOptions: { qos: 1 } });
  const writer = new AckingWriter();
  let app: INestMicroservice | undefined;
  try {
    app = await NestFactory.createMicroservice(DecodeStageModule.forRoot(new MqttDeviceLink(server), writer), { strategy: server, logger: ['error', 'warn'] });
    await app.listen();
  } catch (err) {
    await broker.stop();
    throw err;
  }
  const started = app;
  return {
    mqttUrl: broker.url,
    stats: () => ({ ...writer.counts }),
    async stop() {
      await started.close();
      await broker.stop();
    },
  };
}
