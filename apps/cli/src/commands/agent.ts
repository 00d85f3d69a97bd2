import type { Command } from 'commander';
import { AGENT_CONFIG, DEFAULT_MQTT_URL, loadAgentConfig, startAgent } from '@shelfsight/agent';
import { addConfigOptions, flagsFrom, onShutdown } from '../options';

export function registerAgent(program: Command): void {
  const cmd = program
    .command('agent')
    .description(
      'Run an edge agent: classify frames from a directory, keep every detection in a durable outbox on disk ' +
        `until the hub acknowledges it, publish over MQTT (default ${DEFAULT_MQTT_URL}, the hub's embedded broker).`,
    )
    .addHelpText(
      'after',
      `
Frames: <name>.jpg|jpeg|png|webp plus an optional <name>.json sidecar
  {"location":"A-03-2-B","capturedAt":"2026-01-01T10:00:00Z","site":"..."}.
  Without a sidecar the file name must start with a location code (A-03-2-B_0001.jpg)
  and the capture time is the file's mtime. Frames without a usable location are
  counted (shelf_agent_frames_rejected_total) and skipped. Each file is processed once,
  even across restarts (journal in the state dir).

Outbox: every detection is fsynced to <state-dir>/outbox before it is published and
  removed only when the hub acks its sequence number; it survives kill -9 and any
  outage. When unacked detections reach --outbox-max-bytes the agent stops taking new
  frames: directory frames stay on disk until acks free space, pushed frames are
  dropped by the queue policy. Shown as shelf_agent_outbox_full=1 and
  shelf_agent_outbox_refused_total in GET /metrics.

Queue: at most --queue-size frames wait for the classifier; when a pushed frame
  arrives at a full queue, the queued frame of the same location is dropped, else the
  oldest (shelf_agent_frames_dropped_total{reason}).`,
    );
  addConfigOptions(cmd, AGENT_CONFIG);
  cmd.action(async (opts: Record<string, unknown>) => {
    const config = loadAgentConfig(flagsFrom(AGENT_CONFIG, opts));
    // Signals are handled from the start: a stop requested while the model loads waits
    // for the agent to be up, then stops it cleanly (the outbox is closed properly).
    const starting = startAgent(config);
    const stopped = onShutdown(async () => (await starting).stop());
    await starting;
    await stopped;
  });
}
