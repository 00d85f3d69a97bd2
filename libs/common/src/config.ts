import { z } from 'zod';
import { REDACTED, redactUrl, redactUrls } from './redact';

/** Raised when configuration is invalid; the message names the offending variable or flag. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * A configuration field: its environment variable, its CLI flag and its schema.
 * Values coming from flags win over the environment; the schema supplies defaults.
 */
export interface ConfigField<S extends z.ZodType = z.ZodType> {
  env: string;
  flag?: string;
  description: string;
  schema: S;
  /** A credential, or a URL that may carry one: never echoed in full (errors show it redacted). */
  secret?: boolean;
}

/** The spec key (camelCase) of a field shows as `--kebab-case` unless it names its own flag. */
export function flagOf(key: string, field: ConfigField): string {
  return field.flag ?? key;
}

/** How a field is named to the operator: its flag and its variable, e.g. `--device-id / DEVICE_ID`. */
export function fieldName(key: string, field: ConfigField): string {
  return `--${flagOf(key, field)} / ${field.env}`;
}

/** A field without a default and not optional: it must be given. */
export function isRequired(field: ConfigField): boolean {
  return !field.schema.safeParse(undefined).success;
}

/** Schemas made by {@link cfg.bool}: on/off switches (`--flag`, `--flag=false`). */
const SWITCHES = new WeakSet<z.ZodType>();

/** Whether a field is an on/off switch (its schema was made by `cfg.bool`). */
export function isSwitch(field: ConfigField): boolean {
  return SWITCHES.has(field.schema);
}

/** Values an on/off setting accepts, from a flag or the environment. */
export const SWITCH_VALUES = ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'] as const;

export type ConfigSpec = Record<string, ConfigField>;
export type ConfigOf<T extends ConfigSpec> = { [K in keyof T]: z.infer<T[K]['schema']> };

/**
 * Parse configuration once, at start. `flags` holds values given on the command line
 * (keyed like the spec), `env` is usually `process.env`. Throws {@link ConfigError}
 * naming every bad variable.
 */
export function loadConfig<T extends ConfigSpec>(
  spec: T,
  flags: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
): ConfigOf<T> {
  const out: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const [key, field] of Object.entries(spec)) {
    const fromFlag = flags[key];
    const raw = fromFlag !== undefined ? fromFlag : emptyToUndefined(env[field.env]);
    const result = field.schema.safeParse(raw);
    if (result.success) {
      out[key] = result.data;
    } else if (raw === undefined) {
      errors.push(`${fieldName(key, field)} is required: ${field.description}`);
    } else {
      const source = fromFlag !== undefined ? `--${flagOf(key, field)}` : field.env;
      const issue = result.error.issues[0];
      errors.push(`${fieldName(key, field)}: ${shownValue(raw, field.secret === true)} (from ${source}) is invalid: ${issue?.message ?? 'invalid'} (${field.description})`);
    }
  }
  if (errors.length > 0) throw new ConfigError(`invalid configuration:\n  ${errors.join('\n  ')}`);
  return out as ConfigOf<T>;
}

/** A rejected value as an error may show it: URLs lose their passwords, secrets their value. */
function shownValue(raw: unknown, secret: boolean): string {
  if (typeof raw !== 'string') return JSON.stringify(raw ?? null);
  if (!secret) return JSON.stringify(redactUrls(raw));
  return JSON.stringify(raw.includes('://') ? redactUrl(raw) : REDACTED);
}

function emptyToUndefined(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** Common field schemas (strings from env/flags coerced to typed values). */
export const cfg = {
  port: (def: number) => z.coerce.number().int().min(0).max(65535).default(def),
  int: (def: number, min = 0) => z.coerce.number().int().min(min).default(def),
  number: (def: number, min = 0) => z.coerce.number().min(min).default(def),
  string: (def: string) => z.string().min(1).default(def),
  optionalString: () => z.string().min(1).optional(),
  url: (protocols: string[]) =>
    z
      .string()
      .refine((v) => {
        try {
          return protocols.includes(new URL(v).protocol.replace(':', ''));
        } catch {
          return false;
        }
      }, `expected a URL with scheme ${protocols.join(' or ')}`)
      .optional(),
  /** An on/off switch: `--flag` alone means on; values true/false, 1/0, yes/no, on/off (any case). */
  bool: (def: boolean) => {
    const schema = z
      .union([z.boolean(), z.string()])
      .default(def)
      .transform((v, ctx) => {
        if (typeof v === 'boolean') return v;
        const i = SWITCH_VALUES.indexOf(v.trim().toLowerCase() as (typeof SWITCH_VALUES)[number]);
        if (i < 0) {
          ctx.addIssue({ code: 'custom', message: `expected one of ${SWITCH_VALUES.join(', ')}` });
          return z.NEVER;
        }
        return i % 2 === 0;
      });
    SWITCHES.add(schema);
    return schema;
  },
};

/** Rows for the README's configuration table. */
export function describeConfig(spec: ConfigSpec): Array<{ env: string; flag: string; description: string; required: boolean; switch: boolean }> {
  return Object.entries(spec).map(([key, f]) => ({ env: f.env, flag: flagOf(key, f), description: f.description, required: isRequired(f), switch: isSwitch(f) }));
}
