import { Injectable } from '@nestjs/common';
import { MetricsRegistry, registerProcessMetrics } from '@shelfsight/common';

/** Every counter the hub exposes on GET /metrics; one home for their names. */
@Injectable()
export class HubMetrics {
  readonly registry = new MetricsRegistry();
  readonly detectionsReceived = this.registry.counter('shelfsight_detections_received_total', 'detections received in valid batches');
  readonly detectionsStored = this.registry.counter('shelfsight_detections_stored_total', 'detections newly stored (duplicates excluded)');
  readonly detectionsDuplicate = this.registry.counter('shelfsight_detections_duplicate_total', 'redelivered or repeated detections ignored');
  readonly stateChanges = this.registry.counter('shelfsight_location_state_changes_total', 'location states moved by a newer confident detection');
  readonly rejected = this.registry.counter('shelfsight_payloads_rejected_total', 'MQTT payloads refused, by topic channel and reason');
  readonly overloaded = this.registry.counter('shelfsight_batches_deferred_total', 'batches refused unacknowledged because too much awaited commit (devices resend)');
  readonly commitErrors = this.registry.counter('shelfsight_commit_errors_total', 'failed database commits (retried)');
  readonly acksSent = this.registry.counter('shelfsight_acks_sent_total', 'acknowledgements published to devices');
  readonly commitMs = this.registry.histogram('shelfsight_commit_duration_ms', 'time of one ingest transaction', [1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000]);
  readonly batchRows = this.registry.histogram('shelfsight_commit_batch_rows', 'detections per ingest transaction', [1, 10, 50, 100, 250, 500, 1000, 2000, 5000]);
  readonly retentionDeleted = this.registry.counter('shelfsight_retention_deleted_total', 'raw detections deleted by retention');
  readonly pending = this.registry.gauge('shelfsight_ingest_pending', 'detections in memory awaiting commit');
  readonly mqttAuthRefused = this.registry.counter('shelfsight_mqtt_auth_refused_total', 'embedded-broker connects, publishes and subscribes refused (MQTT_AUTH=on), by action and reason');
  readonly apiKeyRefused = this.registry.counter('shelfsight_api_key_refused_total', 'REST requests refused by the access guard, by reason (missing, unknown, wrong, expired, revoked: 401; role: 403)');
  readonly httpRateLimited = this.registry.counter('shelfsight_http_rate_limited_total', 'REST requests refused with 429 (HTTP_RATE_PER_MINUTE per key or address)');
  readonly httpBodyRefused = this.registry.counter('shelfsight_http_body_refused_total', 'REST request bodies refused before a handler saw them, by reason (too_large, malformed, ...)');
  readonly mqttRefused = this.registry.counter('shelfsight_mqtt_refused_total', 'embedded-broker packets refused by its limits, by reason (packet_too_large, topic_too_long, topic_too_deep, rate, rate_abuse)');
  readonly auditFailures = this.registry.counter('shelfsight_audit_write_failures_total', 'audit log entries that could not be written (logged instead)');
  readonly epochChanges = this.registry.counter('shelfsight_device_epoch_changes_total', 'devices back with a new sequence epoch (storage reset: what they had not delivered is gone)');
  readonly devicesOnline = this.registry.gauge('shelfsight_devices_online', 'devices whose last message was a birth or heartbeat, not a death');

  constructor() {
    registerProcessMetrics(this.registry);
  }
}
