import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import pinoPretty from 'pino-pretty';
import { z } from 'zod';
import type { ConfigSpec } from './config';

/**
 * Structured logging through pino on stderr, so stdout stays free for command output. Every
 * process (hub, agent, CLI) logs through this one setup (see {@link createPino}); the hub's
 * NestJS and HTTP request logs too. Machines get one JSON object per line; a person at a
 * terminal gets the same records as readable lines (pino-pretty), see {@link envLogFormat}.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: ReadonlySet<string> = new Set(['debug', 'info', 'warn', 'error', 'silent']);

/** `json`: one JSON object per line; `pretty`: a readable line per record (same fields). */
export type LogFormat = 'json' | 'pretty';

/** The logging settings every process reads from its environment (the README's settings table). */
export const LOGGING_CONFIG_SPEC = {
  logLevel: {
    env: 'LOG_LEVEL',
    flag: '',
    description: 'lowest level logged: debug, info, warn, error or silent (an unknown value means info)',
    schema: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  },
  logFormat: {
    env: 'LOG_FORMAT',
    flag: '',
    description: 'json (one object per line, for machines), pretty (readable lines) or auto: pretty when stderr is a terminal, else json',
    schema: z.enum(['auto', 'json', 'pretty']).default('auto'),
  },
} satisfies ConfigSpec;

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
  /** Format on stderr; default {@link envLogFormat}. A given `destination` always gets JSON. */
  format?: LogFormat;
}

let stderr: DestinationStream | undefined;
let prettyStderr: DestinationStream | undefined;

/**
 * `LOG_FORMAT`: `json` or `pretty` as named; `auto` (the default, and any unknown value)
 * is pretty when `isTTY` (stderr is a terminal), else JSON.
 */
export function envLogFormat(env: NodeJS.ProcessEnv = process.env, isTTY = process.stderr.isTTY === true): LogFormat {
  const parsed = LOGGING_CONFIG_SPEC.logFormat.schema.safeParse(env.LOG_FORMAT?.trim().toLowerCase() || undefined);
  const v = parsed.success ? parsed.data : 'auto';
  return v === 'auto' ? (isTTY ? 'pretty' : 'json') : v;
}

/**
 * pino-pretty options for a person: local time, level, `component` and Nest `context` before
 * the message, the other fields on the same line; `pid` is left out.
 */
export function prettyOptions(colorize: boolean): pinoPretty.PrettyOptions {
  return {
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,component,context',
    messageFormat: '{if component}{component}{end}{if context} {context}{end}: {msg}',
    singleLine: true,
  };
}

/** The default destination: synchronous stderr, as JSON or through pino-pretty. */
function stderrDestination(format: LogFormat): DestinationStream {
  if (format === 'json') return (stderr ??= pino.destination({ fd: 2, sync: true }));
  return (prettyStderr ??= pinoPretty({ ...prettyOptions(process.stderr.isTTY === true), destination: 2, sync: true }));
}

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
    opts.destination ?? stderrDestination(opts.format ?? envLogFormat()),
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
