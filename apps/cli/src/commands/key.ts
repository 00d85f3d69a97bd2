import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, ConfigError, loadConfig } from '@shelfsight/common';
import { createApiKey, listApiKeys, revokeApiKey, type ApiKeyInfo } from '../hub-client';
import { addConfigOptions, flagsFrom } from '../options';

export const KEY_SPEC = {
  hubUrl: { env: 'HUB_URL', flag: 'hub-url', description: 'hub HTTP address', schema: cfg.string('http://127.0.0.1:3000') },
  apiKey: {
    env: 'HUB_API_KEY',
    flag: 'api-key',
    description: 'an admin API key of the hub (HUB_API_KEY, the first-start key in DATA_DIR/admin-api-key, or one made with `shelf key create`)',
    schema: z.string().min(1, 'needed: pass --api-key or set HUB_API_KEY'),
    secret: true,
  },
} as const;

const CREATE_SPEC = {
  ...KEY_SPEC,
  name: { env: 'KEY_NAME', flag: 'name', description: 'what the key is for (shown in listings), e.g. "grafana" or "alice"', schema: z.string().min(1, 'needed: pass --name') },
  role: { env: 'KEY_ROLE', flag: 'role', description: 'viewer (read), operator (labels, training, models) or admin (keys, devices, audit)', schema: z.enum(['viewer', 'operator', 'admin']) },
  expires: {
    env: 'KEY_EXPIRES',
    flag: 'expires',
    description: 'when the key stops working: a duration from now (90m, 12h, 30d) or an ISO date-time; unset = never',
    schema: z.string().optional(),
  },
} as const;

/** A duration (90m, 12h, 30d) from `now`, or an ISO date-time, as an ISO date-time. */
export function expiryFrom(value: string, now = Date.now()): string {
  const m = /^(\d+)([mhd])$/.exec(value.trim());
  if (m) return new Date(now + Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd']).toISOString();
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new ConfigError(`invalid configuration:\n  --expires=${JSON.stringify(value)}: expected a duration such as 30d, 12h, 90m or an ISO date-time`);
  return new Date(t).toISOString();
}

function row(k: ApiKeyInfo, now = Date.now()): string {
  const state = k.revokedAt ? 'revoked' : k.expiresAt && Date.parse(k.expiresAt) <= now ? 'expired' : 'active';
  return [k.id, k.role.padEnd(8), state.padEnd(7), (k.expiresAt ?? 'never').padEnd(24), (k.lastUsedAt ?? '-').padEnd(24), k.name].join('  ');
}

/** `shelf key create|list|revoke`: the hub's API keys, over its REST API. */
export function registerKey(program: Command): void {
  const key = program.command('key').description('Manage the hub\u2019s API keys (create, list, revoke) through its REST API; needs an admin key');

  const create = key.command('create').description('Create a key; prints it once on stdout (store it now: the hub keeps only a hash)');
  addConfigOptions(create, CREATE_SPEC);
  create.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(CREATE_SPEC, flagsFrom(CREATE_SPEC, opts));
    const created = await createApiKey(c.hubUrl, c.apiKey, { name: c.name, role: c.role, ...(c.expires ? { expiresAt: expiryFrom(c.expires) } : {}) });
    process.stderr.write(`created ${created.role} key ${created.id} "${created.name}", expires ${created.expiresAt ?? 'never'}; it is shown only now:\n`);
    process.stdout.write(`${created.key}\n`);
  });

  const list = key.command('list').description('List every key (id, role, state, expiry, last use, name); never a secret');
  addConfigOptions(list, KEY_SPEC);
  list.option('--json', 'print the list as JSON');
  list.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(KEY_SPEC, flagsFrom(KEY_SPEC, opts));
    const keys = await listApiKeys(c.hubUrl, c.apiKey);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(keys)}\n`);
      return;
    }
    process.stdout.write(`${['id'.padEnd(16), 'role    ', 'state  ', 'expires'.padEnd(24), 'last used'.padEnd(24), 'name'].join('  ')}\n`);
    for (const k of keys) process.stdout.write(`${row(k)}\n`);
  });

  const revoke = key.command('revoke <id>').description('Revoke a key by its id (the part after shk_); refused from now on');
  addConfigOptions(revoke, KEY_SPEC);
  revoke.action(async (id: string, opts: Record<string, unknown>) => {
    const c = loadConfig(KEY_SPEC, flagsFrom(KEY_SPEC, opts));
    const k = await revokeApiKey(c.hubUrl, c.apiKey, id);
    process.stdout.write(`revoked key ${k.id} "${k.name}" (${k.role}) at ${k.revokedAt}\n`);
  });
}
