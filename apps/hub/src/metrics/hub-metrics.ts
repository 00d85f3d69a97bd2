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
  readonly apiKeyRefused = this.registry.counter('shelfsight_api_key_refused_total', 'admin API requests refused for a missing or wrong X-API-Key, by reason');
  readonly epochChanges = this.registry.counter('shelfsight_device_epoch_changes_total', 'devices back with a new sequence epoch (storage reset: what they had not delivered is gone)');
  readonly devicesOnline = this.registry.gauge('shelfsight_devices_online', 'devices whose last message was a birth or heartbeat, not a death');
  readonly samplesStored = this.registry.counter('shelfsight_samples_stored_total', 'samples newly stored (repeats excluded), by reason');
  readonly samplesDuplicate = this.registry.counter('shelfsight_samples_duplicate_total', 'repeated (device, sampleId) samples ignored');
  readonly samplesRejected = this.registry.counter('shelfsight_samples_rejected_total', 'samples and frame replies refused, by reason (schema, invalid_json, device_mismatch, unknown_backbone, dimension_mismatch, quota, queue_full, unknown_request, store_failed)');
  readonly samplesPurged = this.registry.counter('shelfsight_samples_purged_total', 'unlabelled samples deleted after SAMPLE_RETENTION_DAYS');
  readonly samplesQueued = this.registry.gauge('shelfsight_samples_queued', 'samples in memory awaiting the sample writer');
  readonly frameRequests = this.registry.counter('shelfsight_frame_requests_total', 'frame requests sent to devices, by purpose (correction, disagreement)');
  readonly frameReplies = this.registry.counter('shelfsight_frame_replies_total', 'frame replies received, by status (ok, not_held)');
  readonly disputes = this.registry.counter('shelfsight_disputed_detections_total', 'detections marked disputed (devices disagreed on a location within DISAGREEMENT_WINDOW_S)');
  readonly disagreementFramesSkipped = this.registry.counter('shelfsight_disagreement_frames_skipped_total', 'disputed detections whose frame was not requested (over DISAGREEMENT_FRAMES_PER_MINUTE)');
  readonly disagreementDropped = this.registry.counter('shelfsight_disagreement_checks_dropped_total', 'committed locations not checked for disagreement because the checker queue was full');

  constructor() {
    registerProcessMetrics(this.registry);
  }
}
