import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, createProgress, loadConfig } from '@shelfsight/common';
import { HEAD_TYPES, TrainingJobViewSchema, type TrainingJobRequest, type TrainingJobView } from '@shelfsight/contracts';
import { hubJson, HubRequestError } from '../hub-client';
import { addConfigOptions, flagsFrom } from '../options';

const HUB_SPEC = {
  hubUrl: { env: 'HUB_URL', flag: 'hub-url', description: 'hub HTTP address', schema: cfg.string('http://127.0.0.1:3000') },
  apiKey: { env: 'HUB_API_KEY', flag: 'api-key', description: 'API key with the operator role (X-API-Key)', schema: cfg.optionalString() },
};

const START_SPEC = {
  ...HUB_SPEC,
  baseDataset: { env: 'SHELF_JOB_BASE_DATASET', flag: 'base-dataset', description: 'base: a dataset folder or CSV on the hub machine', schema: cfg.optionalString() },
  baseVersion: { env: 'SHELF_JOB_BASE_VERSION', flag: 'base-version', description: 'base: a registered version (its stored training rows)', schema: cfg.optionalString() },
  samples: { env: 'SHELF_JOB_SAMPLES', flag: 'samples', description: 'labelled samples to add: "all labelled" or none', schema: z.enum(['all labelled', 'all', 'none']).default('all labelled') },
  backbone: { env: 'SHELF_JOB_BACKBONE', flag: 'backbone', description: 'backbone spec on the worker (default: the base version\u2019s, else TRAINING_BACKBONE)', schema: cfg.optionalString() },
  head: { env: 'SHELF_HEAD', flag: 'head', description: 'head type: softmax or mlp', schema: z.enum(HEAD_TYPES).default('softmax') },
  hidden: { env: 'SHELF_HIDDEN', flag: 'hidden', description: 'hidden units of the mlp head', schema: z.coerce.number().int().positive().optional() },
  epochs: { env: 'SHELF_EPOCHS', flag: 'epochs', description: 'passes over the training rows', schema: z.coerce.number().positive().optional() },
  learningRate: { env: 'SHELF_LEARNING_RATE', flag: 'learning-rate', description: 'learning rate', schema: z.coerce.number().positive().optional() },
  seed: { env: 'SHELF_SEED', flag: 'seed', description: 'random seed', schema: z.coerce.number().int().optional() },
  augmentViews: {
    env: 'SHELF_JOB_AUGMENT_VIEWS',
    flag: 'augment-views',
    description: 'also train on this many distorted views of each labelled training sample\u2019s thumbnail (backbone pass in the worker; 0 = off)',
    schema: z.coerce.number().int().min(0).max(32).default(0),
  },
};

const JobListSchema = z.array(TrainingJobViewSchema);

/** `shelf jobs start|show|list|cancel|retry`: retraining jobs over the hub's REST API. */
export function registerJobs(program: Command): void {
  const jobs = program.command('jobs').description('Retraining jobs on the hub: start, show (with a progress bar), list, cancel, retry');

  const start = jobs.command('start').description('Queue a retraining job: a base (--base-dataset DIR or --base-version V) plus every labelled sample');
  addConfigOptions(start, START_SPEC);
  start.option('--watch', 'follow the job until it ends');
  start.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(START_SPEC, flagsFrom(START_SPEC, opts));
    if (!c.baseDataset === !c.baseVersion) throw new HubRequestError('give exactly one of --base-dataset DIR or --base-version V');
    const request: TrainingJobRequest = {
      base: c.baseDataset ? { dataset: c.baseDataset } : { version: c.baseVersion as string },
      samples: c.samples === 'none' ? 'none' : 'all labelled',
      ...(c.backbone ? { backbone: c.backbone } : {}),
      head: {
        type: c.head,
        ...(c.hidden !== undefined ? { hidden: c.hidden } : {}),
        ...(c.epochs !== undefined ? { epochs: c.epochs } : {}),
        ...(c.learningRate !== undefined ? { learningRate: c.learningRate } : {}),
        ...(c.seed !== undefined ? { seed: c.seed } : {}),
      },
      augmentFromThumbnails: c.augmentViews > 0 ? { views: c.augmentViews } : false,
    };
    const job = await hubJson({ hubUrl: c.hubUrl, apiKey: c.apiKey }, 'POST', '/training-jobs', TrainingJobViewSchema, request);
    await finish(job, c.hubUrl, c.apiKey, opts.watch === true);
  });

  const show = jobs.command('show <id>').description('A job\u2019s status, phase and progress');
  addConfigOptions(show, HUB_SPEC);
  show.option('--watch', 'follow the job with a progress bar until it ends');
  show.action(async (id: string, opts: Record<string, unknown>) => {
    const c = loadConfig(HUB_SPEC, flagsFrom(HUB_SPEC, opts));
    const job = await hubJson({ hubUrl: c.hubUrl, apiKey: c.apiKey }, 'GET', `/training-jobs/${encodeURIComponent(id)}`, TrainingJobViewSchema);
    await finish(job, c.hubUrl, c.apiKey, opts.watch === true);
  });

  const list = jobs.command('list').description('Recent jobs, newest first');
  addConfigOptions(list, HUB_SPEC);
  list.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(HUB_SPEC, flagsFrom(HUB_SPEC, opts));
    for (const j of await hubJson({ hubUrl: c.hubUrl, apiKey: c.apiKey }, 'GET', '/training-jobs', JobListSchema)) process.stdout.write(summary(j) + '\n');
  });

  for (const [verb, what] of [
    ['cancel', 'Cancel a queued or running job (a running one stops at its next step check)'],
    ['retry', 'Start a new attempt of a failed or cancelled job'],
  ] as const) {
    const cmd = jobs.command(`${verb} <id>`).description(what);
    addConfigOptions(cmd, HUB_SPEC);
    if (verb === 'retry') cmd.option('--watch', 'follow the new attempt until it ends');
    cmd.action(async (id: string, opts: Record<string, unknown>) => {
      const c = loadConfig(HUB_SPEC, flagsFrom(HUB_SPEC, opts));
      const job = await hubJson({ hubUrl: c.hubUrl, apiKey: c.apiKey }, 'POST', `/training-jobs/${encodeURIComponent(id)}/${verb}`, TrainingJobViewSchema);
      await finish(job, c.hubUrl, c.apiKey, opts.watch === true);
    });
  }
}

async function finish(job: TrainingJobView, hubUrl: string, apiKey: string | undefined, watchIt: boolean): Promise<void> {
  const last = watchIt ? await watch(job, hubUrl, apiKey) : job;
  process.stdout.write(JSON.stringify(last) + '\n');
  if (watchIt && last.status !== 'done') process.exitCode = 1;
}

function summary(j: TrainingJobView): string {
  const p = j.progress;
  const epoch = p.epochs ? ` epoch ${p.epoch ?? 0}/${p.epochs}` : '';
  const val = p.valAccuracy !== undefined ? ` val ${(p.valAccuracy * 100).toFixed(1)}%` : '';
  return `job ${j.id} (attempt ${j.attempt}) ${j.status} ${j.phase}${epoch}${val}${j.error ? ` error: ${j.error}` : ''}${j.resultVersion ? ` version ${j.resultVersion}` : ''}`;
}

/** Poll the job, drawing its epochs as a progress bar, until it ends. */
async function watch(job: TrainingJobView, hubUrl: string, apiKey: string | undefined): Promise<TrainingJobView> {
  let current = job;
  let bar: ReturnType<typeof createProgress> | undefined;
  let shown = 0;
  let phase = '';
  for (;;) {
    if (current.phase !== phase) {
      phase = current.phase;
      process.stderr.write(summary(current) + '\n');
    }
    const steps = current.progress.steps;
    if (steps && current.progress.step !== undefined) {
      bar ??= createProgress(`job ${current.id}`, steps);
      if (current.progress.step > shown) {
        bar.tick(current.progress.step - shown, current.progress.valAccuracy !== undefined ? `val ${(current.progress.valAccuracy * 100).toFixed(1)}%` : undefined);
        shown = current.progress.step;
      }
    }
    if (current.status !== 'queued' && current.status !== 'running') {
      bar?.done();
      process.stderr.write(summary(current) + '\n');
      return current;
    }
    await new Promise((r) => setTimeout(r, 500));
    current = await hubJson({ hubUrl, apiKey }, 'GET', `/training-jobs/${current.id}`, TrainingJobViewSchema);
  }
}
