import type { Command } from 'commander';
import { loadWorkerConfig, prepareWorkDir, TrainingWorker, WORKER_CONFIG_SPEC } from '@shelfsight/hub';
import { addConfigOptions, flagsFrom, onShutdown } from '../options';

/** `shelf worker`: run training jobs queued on the hub's database (the hub starts one itself unless TRAINING_WORKER=off). */
export function registerWorker(program: Command): void {
  const cmd = program
    .command('worker')
    .description('Run retraining jobs from the hub\u2019s queue (PostgreSQL): bottlenecks, head training, registration. Any number of workers may share one database; each job runs once.');
  addConfigOptions(cmd, WORKER_CONFIG_SPEC);
  cmd.action(async (opts: Record<string, unknown>) => {
    const config = loadWorkerConfig(flagsFrom(WORKER_CONFIG_SPEC, opts));
    await prepareWorkDir(config.dataDir);
    const worker = await TrainingWorker.start(config);
    // Started by a hub (IPC channel): go when the hub goes, even if it was killed.
    if (process.send) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
    await onShutdown(() => worker.stop());
  });
}
