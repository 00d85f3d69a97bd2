import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, ConfigError, loadConfig } from '@shelfsight/common';
import { DeviceIdSchema, RolloutPolicyInputSchema } from '@shelfsight/contracts';
import { HUB_TARGET_SPEC, hubJson, hubTargetOf, type HubTarget } from '../hub-client';
import { addConfigOptions, flagsFrom } from '../options';

const StageViewSchema = z.object({
  index: z.number(),
  percent: z.number(),
  state: z.string(),
  devices: z.number(),
  counts: z.record(z.string(), z.number()),
  minSoakSeconds: z.number(),
  successThreshold: z.number(),
});
const RolloutViewSchema = z.object({
  id: z.string(),
  modelVersion: z.string(),
  state: z.string(),
  haltReason: z.string().nullable(),
  currentStage: z.number(),
  stages: z.array(StageViewSchema),
  counts: z.record(z.string(), z.number()),
  createdBy: z.string(),
  createdAt: z.string(),
  devices: z.array(z.object({ deviceId: z.string(), stage: z.number(), state: z.string(), reason: z.string().nullable(), activeVersion: z.string().nullable() })).optional(),
});
type RolloutView = z.infer<typeof RolloutViewSchema>;

const CREATE_SPEC = {
  ...HUB_TARGET_SPEC,
  modelVersion: { env: 'SHELF_ROLLOUT_VERSION', flag: 'model-version', description: 'the registered, releasable model version to roll out', schema: z.string().min(1, 'needed: --model-version V') },
  all: { env: 'SHELF_ROLLOUT_ALL', flag: 'all', description: 'target every device of the fleet', schema: cfg.bool(false) },
  sites: { env: 'SHELF_ROLLOUT_SITES', flag: 'sites', description: 'target the devices of these sites (comma-separated)', schema: cfg.optionalString() },
  devices: { env: 'SHELF_ROLLOUT_DEVICES', flag: 'devices', description: 'target these device ids (comma-separated)', schema: cfg.optionalString() },
  percent: { env: 'SHELF_ROLLOUT_PERCENT', flag: 'percent', description: 'only this stable share (1..100) of the selection', schema: z.coerce.number().min(1).max(100).optional() },
  stages: {
    env: 'SHELF_ROLLOUT_STAGES',
    flag: 'stages',
    description: 'cumulative stage percentages, e.g. 5,25,100 (the last must be 100)',
    schema: z.string().regex(/^\d+(\.\d+)?(,\d+(\.\d+)?)*$/, 'comma-separated percentages, e.g. 5,25,100').default('100'),
  },
  soak: { env: 'SHELF_ROLLOUT_SOAK_S', flag: 'soak', description: 'minimum soak time of every stage, seconds', schema: cfg.number(0) },
  successThreshold: { env: 'SHELF_ROLLOUT_SUCCESS', flag: 'success-threshold', description: 'share (0..1) of a stage\u2019s devices that must be active to promote', schema: z.coerce.number().min(0).max(1).default(1) },
  maxFailurePercent: { env: 'SHELF_ROLLOUT_MAX_FAILURE_PERCENT', flag: 'max-failure-percent', description: 'halt when more than this percentage of reporting devices failed', schema: cfg.number(0) },
  minDevices: { env: 'SHELF_ROLLOUT_MIN_DEVICES', flag: 'min-devices', description: '... once at least this many devices reported', schema: cfg.int(1, 1) },
  policy: { env: 'SHELF_ROLLOUT_POLICY', flag: 'policy', description: 'JSON file with the rollout policy (shadowFrames, shadowGate, health, onHalt; absent fields: the defaults; shadowGate/health false only with an overrideReason)', schema: cfg.optionalString() },
} as const;

const LIST_SPEC = {
  ...HUB_TARGET_SPEC,
  state: { env: 'SHELF_ROLLOUT_STATE', flag: 'state', description: 'only rollouts in this state', schema: z.enum(['running', 'paused', 'completed', 'halted', 'aborted', 'rolled_back']).optional() },
} as const;

function splitList(text: string | undefined): string[] | undefined {
  const items = text?.split(',').map((s) => s.trim()).filter(Boolean);
  return items && items.length > 0 ? items : undefined;
}

/** The POST /rollouts body from the command's options. */
export function rolloutRequestOf(c: ReturnType<typeof loadConfig<typeof CREATE_SPEC>>): Record<string, unknown> {
  const sites = splitList(c.sites);
  const deviceIds = splitList(c.devices);
  if ([c.all || undefined, sites, deviceIds].filter((x) => x !== undefined).length !== 1) {
    throw new ConfigError('invalid configuration:\n  give exactly one target: --all, --sites A,B or --devices D1,D2');
  }
  for (const id of deviceIds ?? []) {
    if (!DeviceIdSchema.safeParse(id).success) throw new ConfigError(`invalid configuration:\n  --devices: ${JSON.stringify(id)} is not a device id`);
  }
  let policy: unknown;
  if (c.policy) {
    const parsed = RolloutPolicyInputSchema.safeParse(JSON.parse(readFileSync(c.policy, 'utf8')));
    if (!parsed.success) throw new ConfigError(`invalid configuration:\n  --policy ${c.policy}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    policy = parsed.data;
  }
  return {
    modelVersion: c.modelVersion,
    target: { ...(c.all ? { all: true } : {}), ...(sites ? { sites } : {}), ...(deviceIds ? { deviceIds } : {}), ...(c.percent !== undefined ? { percent: c.percent } : {}) },
    stages: c.stages.split(',').map((p) => ({
      percent: Number(p),
      minSoakSeconds: c.soak,
      successThreshold: c.successThreshold,
      abort: { maxFailurePercent: c.maxFailurePercent, minDevices: c.minDevices },
    })),
    ...(policy ? { policy } : {}),
  };
}

function summary(r: RolloutView): string {
  const stages = r.stages.map((s) => `${s.percent}%:${s.state}(${s.counts.active ?? 0}/${s.devices} active${(s.counts.rejected ?? 0) + (s.counts.rolled_back ?? 0) > 0 ? `, ${(s.counts.rejected ?? 0) + (s.counts.rolled_back ?? 0)} failed` : ''})`);
  return `rollout ${r.id} ${r.modelVersion} ${r.state} stage ${r.currentStage + 1}/${r.stages.length} [${stages.join(' ')}]${r.haltReason ? ` halted: ${r.haltReason}` : ''}`;
}

async function print(target: HubTarget, method: 'GET' | 'POST', path: string, body?: unknown): Promise<void> {
  const r = await hubJson(target, method, path, RolloutViewSchema, body);
  process.stderr.write(summary(r) + '\n');
  process.stdout.write(JSON.stringify(r) + '\n');
}

/** `shelf rollouts create|list|show|pause|resume|abort|rollback`: staged fleet rollouts over the hub's REST API (operator key). */
export function registerRollouts(program: Command): void {
  const rollouts = program.command('rollouts').description('Staged rollouts of a model version to the fleet: create, list, show, pause, resume, abort, rollback (operator key)');

  const create = rollouts.command('create').description('Roll a releasable version out: --model-version V, a target (--all | --sites | --devices), --stages 5,25,100');
  addConfigOptions(create, CREATE_SPEC);
  create.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(CREATE_SPEC, flagsFrom(CREATE_SPEC, opts));
    await print(hubTargetOf(c), 'POST', '/rollouts', rolloutRequestOf(c));
  });

  const list = rollouts.command('list').description('Rollouts, newest first, one line each');
  addConfigOptions(list, LIST_SPEC);
  list.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(LIST_SPEC, flagsFrom(LIST_SPEC, opts));
    const rows = await hubJson(hubTargetOf(c), 'GET', `/rollouts${c.state ? `?state=${c.state}` : ''}`, z.array(RolloutViewSchema));
    for (const r of rows) process.stdout.write(summary(r) + '\n');
  });

  const show = rollouts.command('show <id>').description('A rollout with its stages and every device\u2019s state (JSON on stdout)');
  addConfigOptions(show, HUB_TARGET_SPEC);
  show.action(async (id: string, opts: Record<string, unknown>) => {
    const c = loadConfig(HUB_TARGET_SPEC, flagsFrom(HUB_TARGET_SPEC, opts));
    await print(hubTargetOf(c), 'GET', `/rollouts/${encodeURIComponent(id)}`);
  });

  for (const [verb, what] of [
    ['pause', 'Stop promoting and offering (devices already offered go on)'],
    ['resume', 'Resume a paused rollout'],
    ['abort', 'Stop for good: later stages never get the version, candidates are cancelled; active devices keep it'],
    ['rollback', 'Every device of the rollout back to the version it ran before'],
  ] as const) {
    const cmd = rollouts.command(`${verb} <id>`).description(what);
    addConfigOptions(cmd, HUB_TARGET_SPEC);
    cmd.action(async (id: string, opts: Record<string, unknown>) => {
      const c = loadConfig(HUB_TARGET_SPEC, flagsFrom(HUB_TARGET_SPEC, opts));
      await print(hubTargetOf(c), 'POST', `/rollouts/${encodeURIComponent(id)}/${verb}`);
    });
  }
}
