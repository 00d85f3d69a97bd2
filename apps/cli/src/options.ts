import { Option, type Command } from 'commander';
import { flagOf, isRequired, isSwitch, type ConfigSpec } from '@shelfsight/common';

/**
 * Add one option per configuration field, with its env variable in the help:
 * `--flag <value>` for values, and for on/off settings (`cfg.bool`) a switch that
 * also takes an explicit value — `--http-upload` means on, `--http-upload=false` or
 * `--http-upload false` (true/false, 1/0, yes/no, on/off) sets it either way. A switch
 * that is on by default also gets `--no-<flag>`. Required settings say so; they are
 * checked by `loadConfig`, not by commander, so the env variable can supply them.
 */
export function addConfigOptions(cmd: Command, spec: ConfigSpec): Command {
  for (const [key, field] of Object.entries(spec)) {
    const flag = flagOf(key, field);
    const def = field.schema.safeParse(undefined);
    const shown = isRequired(field) ? ' (required)' : def.success && def.data !== undefined ? ` (default: ${JSON.stringify(def.data)})` : '';
    const help = `${field.description} [env ${field.env}]${shown}`;
    if (isSwitch(field)) {
      cmd.addOption(new Option(`--${flag} [bool]`, help).preset(true));
      if (def.success && def.data === true) cmd.addOption(new Option(`--no-${flag}`, `same as --${flag}=false`));
    } else {
      cmd.option(`--${flag} <value>`, help);
    }
  }
  return cmd;
}

/** Commander stores `--http-port` as `httpPort`; map back to spec keys. */
export function flagsFrom(spec: ConfigSpec, opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(spec)) {
    const camel = flagOf(key, field).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (opts[camel] !== undefined) out[key] = opts[camel];
  }
  return out;
}

/** Resolve when SIGINT/SIGTERM arrives, after running `stop` once. */
export function onShutdown(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`shelf: ${signal}, shutting down\n`);
      stop()
        .catch((err: unknown) => process.stderr.write(`shelf: shutdown error: ${(err as Error).message}\n`))
        .finally(() => resolve());
    };
    process.once('SIGINT', () => handler('SIGINT'));
    process.once('SIGTERM', () => handler('SIGTERM'));
  });
}
