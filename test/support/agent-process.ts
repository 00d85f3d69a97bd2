import { spawnShelf, type ShelfProcess } from './shelf-process';

export type AgentProcess = ShelfProcess;

/** Run `shelf agent` as a separate process, exactly as on a device (logs at warn unless `env` says otherwise). */
export function spawnAgent(args: Record<string, string | number>, env: NodeJS.ProcessEnv = {}): AgentProcess {
  return spawnShelf('agent', args, { LOG_LEVEL: 'warn', ...env });
}
