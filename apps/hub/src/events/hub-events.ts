import type { DeviceDto } from '../devices/device.dto';
import type { TrainingJobDto } from '../training/training-job.dto';

/**
 * What the hub pushes to the console (`GET /events`, server-sent events), by event name.
 * A feature adds its event here (one line) and publishes it with `EventBus.publish`.
 */
export interface HubEvents {
  /** A device was born, died or sent a heartbeat: its row as `GET /devices` shows it. Coalesced per device. */
  device: DeviceDto;
  /** A training job was queued, advanced, finished, failed or was cancelled: as `GET /training/jobs/:id`. Coalesced per job. */
  training: TrainingJobDto;
  /** Detections changed the inventory of a site (re-read `GET /inventory`). Coalesced per site. */
  inventory: { site: string; at: string };
  /** A rollout changed (created, promoted, completed, halted, paused, resumed, aborted, rolled back, a device reported): re-read `GET /rollouts/:id`. Coalesced per rollout. */
  rollout: { id: string; at: string };
}

export type HubEventName = keyof HubEvents;

/** One event on the wire: `event: <name>`, `data: <json>`. */
export interface HubEvent<N extends HubEventName = HubEventName> {
  name: N;
  data: HubEvents[N];
}
