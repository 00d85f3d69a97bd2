import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { hubLoggerParams, nestLoggerOf, pinoLevelOf, requestIdOf, STARTUP_CONTEXTS } from './hub-logger';

describe(pinoLevelOf.name, () => {
  it('maps Nest level lists to the lowest pino level they let through, false to silent', () => {
    expect(pinoLevelOf(false)).toBe('silent');
    expect(pinoLevelOf([])).toBe('silent');
    expect(pinoLevelOf(['error'])).toBe('error');
    expect(pinoLevelOf(['warn', 'error'])).toBe('warn');
    expect(pinoLevelOf(['log', 'warn', 'error'])).toBe('info');
    expect(pinoLevelOf(['debug', 'log'])).toBe('debug');
  });
});

describe(hubLoggerParams.name, () => {
  const loggerOf = (levels: false | ['log', 'warn', 'error']) => {
    const lines: string[] = [];
    const params = hubLoggerParams({ levels, destination: { write: (s: string) => void lines.push(s) } });
    const logger = (params.pinoHttp as { logger: Logger }).logger;
    return { logger, lines };
  };

  it('writes nothing when the hub is silenced (logLevels: false)', () => {
    const { logger, lines } = loggerOf(false);
    logger.error('boom');
    expect(lines).toEqual([]);
  });

  it('writes JSON lines with the hub component otherwise', () => {
    const { logger, lines } = loggerOf(['log', 'warn', 'error']);
    logger.info({ x: 1 }, 'hello');
    logger.debug('not at info');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([expect.objectContaining({ level: 'info', component: 'hub', x: 1, msg: 'hello' })]);
  });
});

describe(requestIdOf.name, () => {
  const exchange = (header?: string) => {
    const set: Record<string, string> = {};
    const req = { headers: header === undefined ? {} : { 'x-request-id': header } } as unknown as IncomingMessage;
    const res = { setHeader: (k: string, v: string) => void (set[k] = v) } as unknown as ServerResponse;
    return { id: requestIdOf(req, res), set };
  };

  it('keeps a plain incoming id and echoes it', () => {
    expect(exchange('abc-123.x:y_z')).toEqual({ id: 'abc-123.x:y_z', set: { 'X-Request-Id': 'abc-123.x:y_z' } });
  });

  it('replaces a missing, too long or unsafe id by a new UUID', () => {
    for (const given of [undefined, '', 'a'.repeat(129), 'two words', 'line\nbreak', '{"level":"error"}']) {
      const { id, set } = exchange(given);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(set['X-Request-Id']).toBe(id);
    }
  });
});

describe(nestLoggerOf.name, () => {
  it("writes Nest's start-up narration at debug and everything else at its own level", () => {
    const lines: string[] = [];
    const params = hubLoggerParams({ levels: ['debug', 'log', 'warn', 'error'], destination: { write: (s: string) => void lines.push(s) } });
    const sut = nestLoggerOf(params);
    for (const context of STARTUP_CONTEXTS) sut.log(`${context} says hello`, context);
    sut.log('REST API on http://x', 'Hub');
    sut.warn('careful', 'InstanceLoader');
    const records = lines.map((l) => JSON.parse(l) as { level: string; context: string; msg: string });
    expect(records.filter((r) => r.level === 'debug').map((r) => r.context)).toEqual([...STARTUP_CONTEXTS]);
    expect(records.filter((r) => r.level !== 'debug')).toEqual([
      expect.objectContaining({ level: 'info', context: 'Hub' }),
      expect.objectContaining({ level: 'warn', context: 'InstanceLoader' }),
    ]);
  });
});
