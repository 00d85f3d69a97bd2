import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/**
 * Structured logging through pino: one JSON object per line on stderr, so stdout stays free
 * for command output. Every process (hub, agent, CLI) logs in this one format; the hub's
 * NestJS and HTTP request logs go through the same pino setup (see {@link createPino}).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: ReadonlySet<string> = new Set(['debug', 'info', 'warn', 'error', 'silent']);

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface PinoOptions {
  /** Lowest level written; default `LOG_LEVEL` or `info`. `silent` writes nothing. */
  level?: LogLevel | 'silent';
  /** Where lines go; default stderr (synchronous, so nothing is lost on exit). */
  destination?: DestinationStream;
}

let stderr: DestinationStream | undefined;

/** `LOG_LEVEL` when it names a level, else `info`. */
export function envLogLevel(): LogLevel | 'silent' {
  const v = process.env.LOG_LEVEL?.trim().toLowerCase();
  return v !== undefined && LEVELS.has(v) ? (v as LogLevel | 'silent') : 'info';
}

/**
 * The pino instance behind every logger of this repository: ISO time, the level as a word,
 * `pid` plus `bindings` on every line, errors under `err` serialized with their stack.
 */
export function createPino(bindings: Record<string, unknown>, opts: PinoOptions = {}): PinoLogger {
  return pino(
    {
      level: opts.level ?? envLogLevel(),
      base: { pid: process.pid, ...bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    opts.destination ?? (stderr ??= pino.destination({ fd: 2, sync: true })),
  );
}

/** A logger for `component` (`{"component": ...}` on each line), plus `base` fields. */
export function createLogger(
  component: string,
  base: Record<string, unknown> = {},
  level: LogLevel | 'silent' = envLogLevel(),
  destination?: DestinationStream,
): Logger {
  return wrap(createPino({ component, ...base }, { level, ...(destination ? { destination } : {}) }));
}

/** Our call shape `(msg, fields)` over pino's `(fields, msg)`. */
function wrap(p: PinoLogger): Logger {
  return {
    debug: (msg, fields) => (fields ? p.debug(fields, msg) : p.debug(msg)),
    info: (msg, fields) => (fields ? p.info(fields, msg) : p.info(msg)),
    warn: (msg, fields) => (fields ? p.warn(fields, msg) : p.warn(msg)),
    error: (msg, fields) => (fields ? p.error(fields, msg) : p.error(msg)),
    child: (fields) => wrap(p.child(fields)),
  };
}

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
