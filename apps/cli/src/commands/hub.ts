import type { Command } from 'commander';
import { HUB_CONFIG_SPEC, loadHubConfig, startHub } from '@shelfsight/hub';
import { addConfigOptions, flagsFrom, onShutdown } from '../options';

export function registerHub(program: Command): void {
  const cmd = program
    .command('hub')
    .description(
      'Run the hub: MQTT ingest of device detections, inventory in PostgreSQL, REST API for people. ' +
        'Without MQTT_URL it embeds an MQTT broker; without DATABASE_URL it embeds PostgreSQL (PGlite).',
    );
  addConfigOptions(cmd, HUB_CONFIG_SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const config = loadHubConfig(flagsFrom(HUB_CONFIG_SPEC, opts));
    const hub = await startHub(config);
    await onShutdown(() => hub.stop());
  });
}
