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
  readonly seqConflicts = new Counter({ name: 'shelfsight_detections_seq_conflicts_total', help: 'detections refused because their (device, epoch, seq) is stored with another frame: a device reused a sequence number', registers: this.registers });
  readonly stateChanges = new Counter({ name: 'shelfsight_location_state_changes_total', help: 'location states moved by a newer confident detection', registers: this.registers });
  readonly rejected = new Counter({
    name: 'shelfsight_payloads_rejected_total',
    help: 'MQTT payloads refused, by topic channel and reason',
    labelNames: ['channel', 'reason'] as const,
    registers: this.registers,
  });
  readonly overloaded = new Counter({
    name: 'shelfsight_batches_deferred_total',
    help: 'batches deferred because too much awaited commit (the device is told to resend after a retry-after)',
    registers: this.registers,
  });
  readonly detectionsDeadLettered = new Counter({
    name: 'shelfsight_detections_dead_lettered_total',
    help: 'detections the database refused for good (SQLSTATE class 22/23), kept in detection_dead_letters and acknowledged, by SQLSTATE',
    labelNames: ['sqlstate'] as const,
    registers: this.registers,
  });
  readonly commitErrors = new Counter({ name: 'shelfsight_commit_errors_total', help: 'failed database commits (retried)', registers: this.registers });
  readonly acksSent = new Counter({ name: 'shelfsight_acks_sent_total', help: 'acknowledgements published to devices', registers: this.registers });
  readonly commitSeconds = new Histogram({
    name: 'shelfsight_commit_duration_seconds',
    help: 'time of one ingest transaction, in seconds',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10],
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
  readonly pendingBytes = new SourcedGauge({
    name: 'shelfsight_ingest_pending_bytes',
    help: 'estimated size of the detections in memory awaiting commit (bounded by INGEST_MAX_PENDING_BYTES)',
    registers: this.registers,
  });
  readonly detectionsDeferred = new Counter({
    name: 'shelfsight_detections_deferred_total',
    help: 'detections not taken because the writer was over INGEST_MAX_PENDING or INGEST_MAX_PENDING_BYTES: the device was told to send them again after a retry-after',
    registers: this.registers,
  });
  readonly detectionsRedelivered = new Counter({
    name: 'shelfsight_detections_redelivered_total',
    help: 'retransmitted detections dropped before any SQL, by where they were (held: committed by this hub, acknowledged again; pending: awaiting commit)',
    labelNames: ['where'] as const,
    registers: this.registers,
  });
  readonly ingestWindow = new SourcedGauge({
    name: 'shelfsight_ingest_window',
    help: 'detections in flight the hub grants each sending device now (its share of the target queue)',
    registers: this.registers,
  });
  readonly ingestCommitRate = new SourcedGauge({
    name: 'shelfsight_ingest_commit_rate',
    help: 'detections committed per second over the last 5 s (what the window target is measured from)',
    registers: this.registers,
  });
  readonly mqttAuthRefused = new Counter({
    name: 'shelfsight_mqtt_auth_refused_total',
    help: 'embedded-broker connects, publishes and subscribes refused (MQTT_AUTH=on), by action and reason',
    labelNames: ['action', 'reason'] as const,
    registers: this.registers,
  });
  readonly apiKeyRefused = new Counter({
    name: 'shelfsight_api_key_refused_total',
    help: 'REST requests refused by the access guard, by reason (missing, unknown, wrong, expired, revoked: 401; role: 403; auth_failures: 429, too many refused keys from the address)',
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
    help: 'embedded-broker packets and connections refused by its limits, by reason (packet_too_large, malformed_length, topic_too_long, topic_too_deep, rate, rate_abuse, client_id; hub_queue_full: detections not forwarded to a hub with MQTT_HUB_QUEUE_BYTES queued toward it)',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly mqttHubQueueBytes = new SourcedGauge({
    name: 'shelfsight_mqtt_hub_queue_bytes',
    help: "embedded broker: bytes queued toward the hubs' connections, not yet taken by them (bounded by MQTT_HUB_QUEUE_BYTES per hub)",
    registers: this.registers,
  });
  readonly mqttBrokerBacklog = new SourcedGauge({
    name: 'shelfsight_mqtt_broker_backlog',
    help: 'embedded broker: published messages waiting for a delivery slot (aedes concurrency); each device connection adds at most the packets of one read',
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
  readonly modelsRegistered = new Counter({
    name: 'shelfsight_models_registered_total',
    help: 'model versions registered, by source and gate verdict',
    labelNames: ['source', 'releasable'] as const,
    registers: this.registers,
  });
  readonly modelsRefused = new Counter({
    name: 'shelfsight_models_refused_total',
    help: 'model registrations refused (damaged artifact, bad training rows, conflicting version), by reason',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly samplesRescored = new Counter({ name: 'shelfsight_samples_rescored_total', help: 'pending samples scored again by a newly registered model version', registers: this.registers });
  readonly devicesOnline = new SourcedGauge({
    name: 'shelfsight_devices_online',
    help: 'devices whose last message was a birth or heartbeat, not a death',
    registers: this.registers,
  });
  readonly samplesStored = new Counter({
    name: 'shelfsight_samples_stored_total',
    help: 'samples newly stored (repeats excluded), by reason',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly samplesDuplicate = new Counter({ name: 'shelfsight_samples_duplicate_total', help: 'repeated (device, sampleId) samples ignored', registers: this.registers });
  readonly samplesRejected = new Counter({
    name: 'shelfsight_samples_rejected_total',
    help: 'samples and frame replies refused, by reason (schema, invalid_json, device_mismatch, unknown_backbone, dimension_mismatch, quota, queue_full, unknown_request, store_failed)',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly samplesPurged = new Counter({ name: 'shelfsight_samples_purged_total', help: 'unlabelled samples deleted after SAMPLE_RETENTION_DAYS', registers: this.registers });
  readonly samplesQueued = new SourcedGauge({ name: 'shelfsight_samples_queued', help: 'samples in memory awaiting the sample writer', registers: this.registers });
  readonly frameRequests = new Counter({
    name: 'shelfsight_frame_requests_total',
    help: 'frame requests sent to devices, by purpose (correction, disagreement)',
    labelNames: ['purpose'] as const,
    registers: this.registers,
  });
  readonly frameReplies = new Counter({
    name: 'shelfsight_frame_replies_total',
    help: 'frame replies received, by status (ok, not_held)',
    labelNames: ['status'] as const,
    registers: this.registers,
  });
  readonly disputes = new Counter({
    name: 'shelfsight_disputed_detections_total',
    help: 'detections marked disputed (devices disagreed on a location within DISAGREEMENT_WINDOW_S)',
    registers: this.registers,
  });
  readonly disagreementDeferred = new Counter({
    name: 'shelfsight_disagreement_deferred_total',
    help: 'locations whose disputes were left unmarked for a later pass because DISAGREEMENT_FRAMES_PER_MINUTE was spent (counted each pass)',
    registers: this.registers,
  });
  readonly disagreementDropped = new Counter({
    name: 'shelfsight_disagreement_checks_dropped_total',
    help: 'committed locations not checked for disagreement because the checker queue was full',
    registers: this.registers,
  });
  readonly rolloutOffers = new Counter({ name: 'shelfsight_rollout_offers_total', help: 'signed model offers published to devices (retained)', registers: this.registers });
  readonly rolloutCommands = new Counter({
    name: 'shelfsight_rollout_commands_total',
    help: 'model commands sent to devices, by command (rollback, cancel)',
    labelNames: ['command'] as const,
    registers: this.registers,
  });
  readonly rolloutAttacks = new Counter({
    name: 'shelfsight_rollout_attacks_total',
    help: 'offers devices refused as forged, tampered, borrowing a rollout id or replayed, by reason (never counted against a rollout)',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly rolloutStatuses = new Counter({
    name: 'shelfsight_rollout_statuses_total',
    help: 'rollout statuses from devices, by state (unknown: for no offer of this hub)',
    labelNames: ['state'] as const,
    registers: this.registers,
  });
  readonly rolloutArtifactRefused = new Counter({
    name: 'shelfsight_rollout_artifact_refused_total',
    help: 'artifact downloads refused, by reason (missing_credentials, unknown_device, bad_password, disabled, bad_token, expired_token: 401; not_targeted, role: 403)',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly rolloutArtifactBytes = new Counter({ name: 'shelfsight_rollout_artifact_bytes_total', help: 'artifact bytes served to devices and operators', registers: this.registers });
}
