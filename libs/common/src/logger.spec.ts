import { prettyFactory } from 'pino-pretty';
import { envLogFormat, prettyOptions } from './logger';

describe(envLogFormat.name, () => {
  it('is pretty on a terminal and JSON otherwise by default (auto, or an unknown value)', () => {
    for (const LOG_FORMAT of [undefined, '', 'auto', 'AUTO ', 'fancy']) {
      expect(envLogFormat({ LOG_FORMAT }, true)).toBe('pretty');
      expect(envLogFormat({ LOG_FORMAT }, false)).toBe('json');
    }
  });

  it('takes json or pretty as named, whatever stderr is', () => {
    expect(envLogFormat({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(envLogFormat({ LOG_FORMAT: 'Pretty' }, false)).toBe('pretty');
  });
});

describe(prettyOptions.name, () => {
  it('prints a record as one readable line: time, level, component and context, message, other fields', () => {
    const line = prettyFactory(prettyOptions(false))(
      JSON.stringify({ level: 30, time: Date.parse('2026-12-08T10:11:12.345Z'), pid: 7, component: 'hub', context: 'Hub', msg: 'REST API on http://x', port: 3000 }),
    );
    expect(line.trim().split('\n')).toHaveLength(1);
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hub Hub: REST API on http:\/\/x \{"port":3000\}$/m);
    expect(line).not.toContain('"pid"');
  });
});
