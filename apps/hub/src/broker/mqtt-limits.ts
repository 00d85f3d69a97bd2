import { Duplex, Transform, type TransformCallback } from 'node:stream';
import type { Socket } from 'node:net';
import { Logger } from '@nestjs/common';

/** Why the embedded broker refused something (the label of shelfsight_mqtt_refused_total). */
export type MqttRefusal = 'packet_too_large' | 'malformed_length' | 'topic_too_long' | 'topic_too_deep' | 'rate' | 'rate_abuse' | 'client_id' | 'hub_queue_full';

export interface MqttLimitOptions {
  /** Largest packet (fixed header + remaining length) accepted. */
  maxPacketBytes: number;
  /** Sustained PUBLISH packets per second per connection. */
  ratePerS: number;
  /** Bucket size: PUBLISH packets a connection may send at once. */
  burst: number;
  /** Longest topic (or subscription filter), in bytes. */
  maxTopicBytes?: number;
  /** Most levels in a topic (or filter). */
  maxTopicLevels?: number;
  /**
   * Bytes queued toward a hub connection (written by the broker, not yet taken by the hub)
   * beyond which device detections are not forwarded to it (default 8 MiB).
   */
  hubQueueBytes?: number;
}

/** Device detection topics (`shelfsight/v1/devices/<id>/detections`): the only messages dropped before a full hub queue. */
const DETECTIONS_TOPIC = /^shelfsight\/v1\/devices\/[^/]+\/detections$/;
const DEFAULT_HUB_QUEUE_BYTES = 8 * 1024 * 1024;

/** Device topics are `shelfsight/v1/devices/<id>/<channel>` (5 levels, well under 200 bytes). */
const DEFAULT_MAX_TOPIC_BYTES = 256;
const DEFAULT_MAX_TOPIC_LEVELS = 8;
const PUBLISH = 3;

/**
 * Limits of the embedded broker, applied to every connection before aedes sees its bytes:
 * - a packet whose fixed header announces more than `maxPacketBytes` closes the connection
 *   at once, so a 100 MB PUBLISH is never buffered (aedes' parser would collect it whole);
 * - PUBLISH packets beyond a token bucket (`ratePerS`, `burst`) are dropped whole (QoS 1
 *   ones are not acknowledged, so nothing accepted is lost: devices resend what the hub has
 *   not acknowledged); a connection that keeps exceeding it (a second bucket of `burst`
 *   drops empties) is closed;
 * - topics and filters longer or deeper than devices ever need are refused (through the
 *   aedes hooks, see {@link topicRefusal});
 * - the queue toward each hub connection is bounded ({@link forwardRefused}): aedes writes
 *   every delivery to the subscriber's connection at once, so a hub that falls behind
 *   would otherwise hold an unbounded queue in the broker. Past `hubQueueBytes`, device
 *   detections are not forwarded to it (what Mosquitto's max_queued_bytes does); the
 *   devices keep them (only the hub's ack frees them) and send them again after their
 *   ack timeout, with a halved window.
 * Every refusal is counted through the listener and logged, rate-limited. One connection's
 * abuse costs only that connection.
 */
export class MqttLimits {
  readonly maxTopicBytes: number;
  readonly maxTopicLevels: number;
  private readonly log = new Logger('MqttLimits');
  private listener?: (reason: MqttRefusal) => void;
  private readonly early = new Map<MqttRefusal, number>();
  private lastLogAt = 0;
  private suppressed = 0;
  private readonly gates = new WeakMap<object, PacketGate>();
  private readonly sockets = new WeakMap<object, Socket>();
  /** The hubs' connections (exempt from the rate limit, bounded in what is queued toward them). */
  private readonly hubConns = new Set<Duplex>();
  readonly hubQueueBytes: number;

  constructor(
    readonly options: MqttLimitOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.maxTopicBytes = options.maxTopicBytes ?? DEFAULT_MAX_TOPIC_BYTES;
    this.maxTopicLevels = options.maxTopicLevels ?? DEFAULT_MAX_TOPIC_LEVELS;
    this.hubQueueBytes = options.hubQueueBytes ?? DEFAULT_HUB_QUEUE_BYTES;
  }

  /** Connect the counter (refusals before that are kept and handed over). */
  attach(listener: (reason: MqttRefusal) => void): void {
    this.listener = listener;
    for (const [reason, n] of this.early) for (let i = 0; i < n; i++) listener(reason);
    this.early.clear();
  }

  /** The stream aedes reads a client from: the socket's bytes through the packet and rate limits. */
  wrap(socket: Socket): Duplex {
    const gate = new PacketGate(this.options, this.now, (reason, detail) => this.refuse(reason, `${socket.remoteAddress ?? '?'}: ${detail}`));
    socket.on('error', () => gate.destroy());
    const conn = Duplex.from({ readable: socket.pipe(gate), writable: socket });
    gate.once('close-connection', () => {
      socket.destroy();
      conn.destroy();
    });
    this.gates.set(conn, gate);
    this.sockets.set(conn, socket);
    return conn;
  }

  /**
   * A hub's connection: no rate limit (it publishes every device's acks), and the queue
   * toward it bounded by `hubQueueBytes`.
   */
  exempt(conn: Duplex): void {
    const gate = this.gates.get(conn);
    if (gate) gate.rateLimited = false;
    this.hubConns.add(conn);
    conn.once('close', () => this.hubConns.delete(conn));
  }

  /** Bytes written toward a connection and not yet taken by its peer (in the stream and the socket). */
  queuedBytes(conn: Duplex): number {
    const socket = this.sockets.get(conn);
    return conn.writableLength + (socket && socket !== conn ? socket.writableLength : 0);
  }

  /** Bytes queued toward the hubs' connections, all together. */
  hubQueuedBytes(): number {
    let n = 0;
    for (const conn of this.hubConns) n += this.queuedBytes(conn);
    return n;
  }

  /** Whether a message is not forwarded to this connection: device detections toward a hub whose queue is full. */
  forwardRefused(conn: Duplex, topic: string): boolean {
    if (!this.hubConns.has(conn) || this.queuedBytes(conn) < this.hubQueueBytes) return false;
    return DETECTIONS_TOPIC.test(topic);
  }

  /**
   * Whether a client id is refused: wildcard, path or control characters (an id becomes a
   * topic level), or longer than any device id or hub client id.
   */
  clientIdRefused(clientId: string): boolean {
    if (clientId.length > 128 || /[/+#]/.test(clientId)) return true;
    for (let i = 0; i < clientId.length; i++) {
      const c = clientId.charCodeAt(i);
      if (c < 0x20 || c === 0x7f) return true;
    }
    return false;
  }

  /** Why a topic or filter is refused, if it is. */
  topicRefusal(topic: string): MqttRefusal | undefined {
    if (Buffer.byteLength(topic) > this.maxTopicBytes) return 'topic_too_long';
    if (topic.split('/').length > this.maxTopicLevels) return 'topic_too_deep';
    return undefined;
  }

  refuse(reason: MqttRefusal, detail: string): void {
    if (this.listener) this.listener(reason);
    else this.early.set(reason, (this.early.get(reason) ?? 0) + 1);
    const now = this.now();
    if (now - this.lastLogAt < 1000) {
      this.suppressed += 1;
      return;
    }
    const extra = this.suppressed > 0 ? ` (+${this.suppressed} more refusals suppressed)` : '';
    this.suppressed = 0;
    this.lastLogAt = now;
    this.log.warn(`refused (${reason}): ${detail}${extra}`);
  }
}

/**
 * Splits the byte stream into MQTT packets by their fixed headers (type, remaining length)
 * without buffering their bodies: bytes pass through as they come, or are skipped for a
 * dropped PUBLISH. Emits `close-connection` when the connection must end.
 */
class PacketGate extends Transform {
  /** Bytes of the current packet still to pass (or skip). */
  private remaining = 0;
  private skipping = false;
  /** The fixed header being read: type byte and up to four length bytes. */
  private header: number[] = [];
  private shut = false;
  rateLimited = true;
  private tokens: number;
  private strikes: number;
  private refilledAt: number;

  constructor(
    private readonly limits: MqttLimitOptions,
    private readonly now: () => number,
    private readonly onRefuse: (reason: MqttRefusal, detail: string) => void,
  ) {
    super();
    this.tokens = limits.burst;
    this.strikes = limits.burst;
    this.refilledAt = now();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.shut) return done();
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - pos);
        if (!this.skipping) this.push(chunk.subarray(pos, pos + n));
        pos += n;
        this.remaining -= n;
        continue;
      }
      // Reading a fixed header.
      this.header.push(chunk[pos]!);
      pos += 1;
      if (this.header.length === 1) continue;
      const last = this.header[this.header.length - 1]!;
      if (last & 0x80) {
        if (this.header.length === 5) return this.close('malformed_length', 'remaining length longer than 4 bytes', done);
        continue;
      }
      let length = 0;
      for (let i = this.header.length - 1; i >= 1; i--) length = length * 128 + (this.header[i]! & 0x7f);
      const total = this.header.length + length;
      if (total > this.limits.maxPacketBytes) {
        return this.close('packet_too_large', `packet of ${total} bytes announced (limit ${this.limits.maxPacketBytes})`, done);
      }
      const type = this.header[0]! >> 4;
      this.skipping = type === PUBLISH && this.rateLimited && !this.takeToken();
      if (this.skipping && this.shut) return done();
      if (!this.skipping) this.push(Buffer.from(this.header));
      this.header = [];
      this.remaining = length;
    }
    done();
  }

  /** A token for one PUBLISH, or false (dropped, counted; too many drops close the connection). */
  private takeToken(): boolean {
    const now = this.now();
    const refill = ((now - this.refilledAt) / 1000) * this.limits.ratePerS;
    this.refilledAt = now;
    this.tokens = Math.min(this.limits.burst, this.tokens + refill);
    this.strikes = Math.min(this.limits.burst, this.strikes + refill);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.strikes -= 1;
    if (this.strikes < 0) {
      this.closeNow('rate_abuse', `kept publishing faster than ${this.limits.ratePerS}/s`);
      return false;
    }
    this.onRefuse('rate', `publish dropped (over ${this.limits.ratePerS}/s, burst ${this.limits.burst})`);
    return false;
  }

  private close(reason: MqttRefusal, detail: string, done: TransformCallback): void {
    this.closeNow(reason, detail);
    done();
  }

  private closeNow(reason: MqttRefusal, detail: string): void {
    if (this.shut) return;
    this.shut = true;
    this.onRefuse(reason, detail);
    this.emit('close-connection');
  }
}
