import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { cfg, ConfigError, loadConfig } from '@shelfsight/common';
import { DeviceIdSchema } from '@shelfsight/contracts';
import { deviceCredentialStatus, disableDeviceCredential, hubRequest, issueDeviceCredential, type IssuedCredential } from '../hub-client';
import { addConfigOptions, flagsFrom } from '../options';
import { KEY_SPEC } from './key';

const ADD_SPEC = {
  ...KEY_SPEC,
  mqttUrl: {
    env: 'DEVICE_MQTT_URL',
    flag: 'mqtt-url',
    description: 'the broker address the device should use, written into its settings (e.g. mqtt://hub.local:1884); unset = left out',
    schema: cfg.optionalString(),
  },
  out: { env: 'DEVICE_ENV_FILE', flag: 'out', description: 'write the device\u2019s settings to this file (mode 0600) instead of stdout', schema: cfg.optionalString() },
  trustedKeysOut: {
    env: 'DEVICE_TRUSTED_KEYS_FILE',
    flag: 'trusted-keys-out',
    description: 'write the hub\u2019s rollout root public key (GET /rollouts/trusted-keys; devices learn the release keys from the lists it signs) to this file, the agent\u2019s --trusted-keys, and name it in the settings; unset = it is printed on stderr',
    schema: cfg.optionalString(),
  },
} as const;

function deviceIdOf(id: string): string {
  const parsed = DeviceIdSchema.safeParse(id);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n  <id>=${JSON.stringify(id)}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** The agent settings a provisioned device needs, as an environment file. */
export function deviceEnv(credential: IssuedCredential, mqttUrl?: string, trustedKeysFile?: string): string {
  return [
    `# ShelfSight device ${credential.deviceId}: settings for \`shelf agent\` (keep secret: it holds the device's MQTT password)`,
    `DEVICE_ID=${credential.deviceId}`,
    `MQTT_USERNAME=${credential.username}`,
    `MQTT_PASSWORD=${credential.password}`,
    ...(mqttUrl ? [`MQTT_URL=${mqttUrl}`] : []),
    ...(trustedKeysFile ? [`AGENT_TRUSTED_KEYS=${trustedKeysFile}`] : []),
    '',
  ].join('\n');
}

/** `shelf device add|rotate|revoke|status`: device identities and MQTT credentials, over the hub's REST API. */
export function registerDevice(program: Command): void {
  const device = program.command('device').description('Provision devices (identity and MQTT credential), rotate and revoke their credentials; needs an admin key');

  const issue = (name: string, description: string) => {
    const cmd = device.command(`${name} <id>`).description(description);
    addConfigOptions(cmd, ADD_SPEC);
    cmd.action(async (id: string, opts: Record<string, unknown>) => {
      const c = loadConfig(ADD_SPEC, flagsFrom(ADD_SPEC, opts));
      const deviceId = deviceIdOf(id);
      const credential = await issueDeviceCredential(c.hubUrl, c.apiKey, deviceId);
      // The rollout root public key: the device trusts only the release keys its signed lists name.
      const trustedKeys = await (await hubRequest({ hubUrl: c.hubUrl, apiKey: c.apiKey }, 'GET', '/rollouts/trusted-keys')).text();
      if (c.trustedKeysOut) {
        writeFileSync(c.trustedKeysOut, trustedKeys);
        process.stderr.write(`device ${deviceId}: rollout trusted keys written to ${c.trustedKeysOut} (agent --trusted-keys)\n`);
      } else {
        process.stderr.write(`rollout trusted keys (save as the agent's --trusted-keys file, or pass --trusted-keys-out FILE):\n${trustedKeys}`);
      }
      const env = deviceEnv(credential, c.mqttUrl, c.trustedKeysOut);
      if (c.out) {
        writeFileSync(c.out, env, { mode: 0o600 });
        process.stderr.write(`device ${deviceId}: credential ${name === 'add' ? 'issued' : 'rotated'}; settings written to ${c.out} (mode 0600)\n`);
      } else {
        process.stderr.write(`device ${deviceId}: credential ${name === 'add' ? 'issued' : 'rotated'}; its settings (shown only now):\n`);
        process.stdout.write(env);
      }
    });
  };
  issue('add', 'Provision a device: create its MQTT credential (username = client id = device id) and print the agent settings once');
  issue('rotate', 'Give a device a new MQTT password (the old one stops working and the device is disconnected at once)');

  const revoke = device.command('revoke <id>').description('Disable a device\u2019s credential: it is disconnected at once and refused from now on');
  addConfigOptions(revoke, KEY_SPEC);
  revoke.action(async (id: string, opts: Record<string, unknown>) => {
    const c = loadConfig(KEY_SPEC, flagsFrom(KEY_SPEC, opts));
    const s = await disableDeviceCredential(c.hubUrl, c.apiKey, deviceIdOf(id));
    process.stdout.write(`device ${s.deviceId}: credential disabled at ${s.disabledAt}\n`);
  });

  const status = device.command('status <id>').description('Show a device\u2019s credential state (never its password)');
  addConfigOptions(status, KEY_SPEC);
  status.action(async (id: string, opts: Record<string, unknown>) => {
    const c = loadConfig(KEY_SPEC, flagsFrom(KEY_SPEC, opts));
    process.stdout.write(`${JSON.stringify(await deviceCredentialStatus(c.hubUrl, c.apiKey, deviceIdOf(id)))}\n`);
  });
}
