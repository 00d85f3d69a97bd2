import type { Command } from 'commander';
import type { ConfigSpec } from '@shelfsight/common';

/** Add one `--flag <value>` per configuration field, with its env variable in the help. */
export function addConfigOptions(cmd: Command, spec: ConfigSpec): Command {
  for (const [key, field] of Object.entries(spec)) {
    const flag = field.flag ?? key;
    const def = field.schema.safeParse(undefined);
    const shown = def.success && def.data !== undefined ? ` (default: ${JSON.stringify(def.data)})` : '';
    cmd.option(`--${flag} <value>`, `${field.description} [env ${field.env}]${shown}`);
  }
  return cmd;
}

/** Commander stores `--http-port` as `httpPort`; map back to spec keys. */
export function flagsFrom(spec: ConfigSpec, opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(spec)) {
    const camel = (field.flag ?? key).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
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
