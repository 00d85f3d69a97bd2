import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LogLevel as NestLogLevel } from '@nestjs/common';
import { createPino, envLogLevel, type LogFormat, type LogLevel } from '@shelfsight/common';
import { Logger as NestPinoLogger, PinoLogger, type Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';

/** The header that carries a request's id, in and out. */
export const REQUEST_ID_HEADER = 'X-Request-Id';
/** An incoming id is kept when it is a plain token (so a header cannot forge log lines). */
const ACCEPTABLE_ID = /^[\w.:-]{1,128}$/;
const PROBES = ['/health', '/metrics'];

export interface HubLogOptions {
  /** Nest log levels; false silences the hub; undefined: `LOG_LEVEL` (default info). */
  levels?: NestLogLevel[] | false;
  /** Where lines go; default stderr. */
  destination?: DestinationStream;
  /** Format on stderr; default `LOG_FORMAT` (pretty on a terminal, else JSON). */
  format?: LogFormat;
}

/**
 * The Nest classes that narrate start-up (one line per module, route and controller,
 * about 170 lines): their `log` lines are written at debug, so `LOG_LEVEL=debug` shows them.
 */
export const STARTUP_CONTEXTS: ReadonlySet<string> = new Set(['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestApplication', 'NestMicroservice']);

/** The lowest pino level a Nest level list lets through. */
export function pinoLevelOf(levels: NestLogLevel[] | false | undefined): LogLevel | 'silent' {
  if (levels === undefined) return envLogLevel();
  if (levels === false || levels.length === 0) return 'silent';
  if (levels.includes('verbose') || levels.includes('debug')) return 'debug';
  if (levels.includes('log')) return 'info';
  if (levels.includes('warn')) return 'warn';
  return 'error';
}

/** The id of a request: its `X-Request-Id` when usable, else a new UUID; echoed on the response. */
export function requestIdOf(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers[REQUEST_ID_HEADER.toLowerCase()];
  const candidate = Array.isArray(given) ? given[0] : given;
  const id = candidate !== undefined && ACCEPTABLE_ID.test(candidate) ? candidate : randomUUID();
  res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/**
 * nestjs-pino parameters for the hub: the same pino JSON as every other process
 * (`component: "hub"`), one line per HTTP request (method, url, status, time; never headers,
 * which carry the API key) with its request id, and that id (`requestId`) on every line
 * logged while handling the request. Probes (/health, /metrics) log at debug.
 */
export function hubLoggerParams(opts: HubLogOptions = {}): Params {
  const logger = createPino(
    { component: 'hub' },
    { level: pinoLevelOf(opts.levels), ...(opts.destination ? { destination: opts.destination } : {}), ...(opts.format ? { format: opts.format } : {}) },
  );
  return {
    pinoHttp: {
      logger,
      genReqId: requestIdOf,
      customAttributeKeys: { reqId: 'requestId' },
      quietReqLogger: true,
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (req, res, err) => {
        if (err || res.statusCode >= 500) return 'error';
        if (res.statusCode >= 400) return 'warn';
        return PROBES.some((p) => req.url?.startsWith(p)) ? 'debug' : 'info';
      },
    },
  };
}

/** nestjs-pino's Nest logger, with the framework's start-up narration moved to debug. */
class HubNestLogger extends NestPinoLogger {
  override log(message: unknown, ...optionalParams: unknown[]): void {
    const context = optionalParams.at(-1);
    if (typeof context === 'string' && STARTUP_CONTEXTS.has(context)) this.debug(message, ...optionalParams);
    else super.log(message, ...optionalParams);
  }
}

/**
 * A Nest LoggerService over those parameters, for `NestFactory.create({ logger })` and
 * `Logger.overrideLogger`, so that Nest's `Logger` in services writes the same records;
 * the framework's start-up lines ({@link STARTUP_CONTEXTS}) at debug.
 * (nestjs-pino keeps one pino-http instance per process: the first hub's settings win.)
 */
export function nestLoggerOf(params: Params): NestPinoLogger {
  return new HubNestLogger(new PinoLogger(params), params);
}
