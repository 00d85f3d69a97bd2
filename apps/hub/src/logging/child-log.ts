import { pino, type Level, type Logger } from 'pino';

const LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
/** Fields of a child's record the hub's logger writes itself (its own time, level, message). */
const REWRITTEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'component']);

/** A child's pino record: a JSON object whose `level` names (or numbers) a pino level. */
function recordOf(line: string): { level: Level; fields: Record<string, unknown> } | undefined {
  if (!line.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const fields = parsed as Record<string, unknown>;
  const raw = fields.level;
  const level = typeof raw === 'number' ? pino.levels.labels[raw] : raw;
  return typeof level === 'string' && LEVELS.has(level) ? { level: level as Level, fields } : undefined;
}

/**
 * Log one line a child process (the training worker) wrote on stdout/stderr through the
 * hub's logger. A pino record stays a record: written at its own level with its fields
 * (`msg`, `err`, the job's fields...), its `pid` as `childPid` and its `component` as
 * `childComponent` beside the hub's own; the hub's level decides whether it is written.
 * Any other line (a crash's stack trace, stray output) is logged as its text at `plain`.
 */
export function relayChildLine(line: string, log: Logger, plain: Level = 'info'): void {
  if (line.trim() === '') return;
  const record = recordOf(line);
  if (!record) {
    log[plain](line);
    return;
  }
  const { fields } = record;
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (!REWRITTEN.has(k)) own[k] = v;
  if (fields.pid !== undefined) own.childPid = fields.pid;
  if (fields.component !== undefined) own.childComponent = fields.component;
  const msg = typeof fields.msg === 'string' ? fields.msg : '';
  log[record.level](own, msg);
}
