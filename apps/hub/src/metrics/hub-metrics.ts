import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry, SourcedGauge } from '@shelfsight/common';

/**
 * Every metric the hub exposes on GET /metrics (prom-client, one registry per hub); one home
 * for their names. Counters take `inc(labels, by)`; a gauge that mirrors state is a
 * {@link SourcedGauge} its owner points at the state with `readFrom(...)`.
 */
@Injectable()
export class HubMetrics {
  readonly registry = new Registry();
  private readonly registers = [this.registry];

  readonly detectionsReceived = new Counter({ name: 'shelfsight_detections_received_total', help: 'detections received in valid batches', registers: this.registers });
  readonly detectionsStored = new Counter({ name: 'shelfsight_detections_stored_total', help: 'detections newly stored (duplicates excluded)', registers: this.registers });
  readonly detectionsDuplicate = new Counter({ name: 'shelfsight_detections_duplicate_total', help: 'redelivered or repeated detections ignored', registers: this.registers });
  readonly stateChanges = new Counter({ name: 'shelfsight_location_state_changes_total', help: 'location states moved by a newer confident detection', registers: this.registers });
  readonly rejected = new Counter({
    name: 'shelfsight_payloads_rejected_total',
    help: 'MQTT payloads refused, by topic channel and reason',
    labelNames: ['channel', 'reason'] as const,
    registers: this.registers,
  });
  readonly overloaded = new Counter({
    name: 'shelfsight_batches_deferred_total',
    help: 'batches refused unacknowledged because too much awaited commit (devices resend)',
    registers: this.registers,
  });
  readonly commitErrors = new Counter({ name: 'shelfsight_commit_errors_total', help: 'failed database commits (retried)', registers: this.registers });
  readonly acksSent = new Counter({ name: 'shelfsight_acks_sent_total', help: 'acknowledgements published to devices', registers: this.registers });
  readonly commitMs = new Histogram({
    name: 'shelfsight_commit_duration_ms',
    help: 'time of one ingest transaction',
    buckets: [1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000],
    registers: this.registers,
  });
  readonly batchRows = new Histogram({
    name: 'shelfsight_commit_batch_rows',
    help: 'detections per ingest transaction',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2000, 5000],
    registers: this.registers,
  });
  readonly retentionDeleted = new Counter({ name: 'shelfsight_retention_deleted_total', help: 'raw detections deleted by retention', registers: this.registers });
  readonly pending = new SourcedGauge({ name: 'shelfsight_ingest_pending', help: 'detections in memory awaiting commit', registers: this.registers });
  readonly mqttAuthRefused = new Counter({
    name: 'shelfsight_mqtt_auth_refused_total',
    help: 'embedded-broker connects, publishes and subscribes refused (MQTT_AUTH=on), by action and reason',
    labelNames: ['action', 'reason'] as const,
    registers: this.registers,
  });
  readonly apiKeyRefused = new Counter({
    name: 'shelfsight_api_key_refused_total',
    help: 'REST requests refused by the access guard, by reason (missing, unknown, wrong, expired, revoked: 401; role: 403)',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly httpRateLimited = new Counter({
    name: 'shelfsight_http_rate_limited_total',
    help: 'REST requests refused with 429 (HTTP_RATE_PER_MINUTE per key or address)',
    registers: this.registers,
  });
  readonly httpBodyRefused = new Counter({
    name: 'shelfsight_http_body_refused_total',
    help: 'REST request bodies refused before a handler saw them, by reason (too_large, malformed, ...)',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly mqttRefused = new Counter({
    name: 'shelfsight_mqtt_refused_total',
    help: 'embedded-broker packets and connections refused by its limits, by reason (packet_too_large, malformed_length, topic_too_long, topic_too_deep, rate, rate_abuse, client_id)',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly auditFailures = new Counter({
    name: 'shelfsight_audit_write_failures_total',
    help: 'audit log entries that could not be written (logged instead)',
    registers: this.registers,
  });
  readonly epochChanges = new Counter({
    name: 'shelfsight_device_epoch_changes_total',
    help: 'devices back with a new sequence epoch (storage reset: what they had not delivered is gone)',
    registers: this.registers,
  });
  readonly devicesOnline = new SourcedGauge({
    name: 'shelfsight_devices_online',
    help: 'devices whose last message was a birth or heartbeat, not a death',
    registers: this.registers,
  });
}
