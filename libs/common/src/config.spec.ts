import { z } from 'zod';
import { cfg, ConfigError, describeConfig, fieldName, isRequired, isSwitch, loadConfig, type ConfigSpec } from './config';

const SPEC = {
  deviceId: { env: 'DEVICE_ID', flag: 'device-id', description: 'device id, unique in the fleet', schema: z.string().min(1) },
  httpPort: { env: 'AGENT_HTTP_PORT', flag: 'http-port', description: 'health port', schema: cfg.port(0) },
  httpUpload: { env: 'AGENT_HTTP_UPLOAD', flag: 'http-upload', description: 'accept uploads', schema: cfg.bool(false) },
  cache: { env: 'SHELF_CACHE', description: 'use the cache', schema: cfg.bool(true) },
} satisfies ConfigSpec;

const messageOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe(loadConfig.name, () => {
  it('applies defaults, then the environment, then flags', () => {
    expect(loadConfig(SPEC, { deviceId: 'a' }, {})).toEqual({ deviceId: 'a', httpPort: 0, httpUpload: false, cache: true });
    expect(loadConfig(SPEC, {}, { DEVICE_ID: 'env', AGENT_HTTP_PORT: '8080' })).toMatchObject({ deviceId: 'env', httpPort: 8080 });
    expect(loadConfig(SPEC, { deviceId: 'flag', httpPort: '9' }, { DEVICE_ID: 'env', AGENT_HTTP_PORT: '8080' })).toMatchObject({ deviceId: 'flag', httpPort: 9 });
  });

  it('names both the flag and the variable of a missing required setting, with its meaning', () => {
    expect(messageOf(() => loadConfig(SPEC, {}, {}))).toBe('invalid configuration:\n  --device-id / DEVICE_ID is required: device id, unique in the fleet');
    // An empty variable counts as unset.
    expect(messageOf(() => loadConfig(SPEC, {}, { DEVICE_ID: '' }))).toContain('--device-id / DEVICE_ID is required');
  });

  it('names the flag, the variable and where an invalid value came from; every bad field is listed', () => {
    const fromFlag = messageOf(() => loadConfig(SPEC, { httpPort: '70000' }, { DEVICE_ID: 'a' }));
    expect(fromFlag).toContain('--http-port / AGENT_HTTP_PORT: "70000" (from --http-port) is invalid:');
    expect(fromFlag).toContain('(health port)');
    const fromEnv = messageOf(() => loadConfig(SPEC, {}, { AGENT_HTTP_PORT: 'x', AGENT_HTTP_UPLOAD: 'maybe' }));
    expect(fromEnv.split('\n')).toEqual([
      'invalid configuration:',
      '  --device-id / DEVICE_ID is required: device id, unique in the fleet',
      expect.stringContaining('--http-port / AGENT_HTTP_PORT: "x" (from AGENT_HTTP_PORT) is invalid:'),
      '  --http-upload / AGENT_HTTP_UPLOAD: "maybe" (from AGENT_HTTP_UPLOAD) is invalid: expected one of true, false, 1, 0, yes, no, on, off (accept uploads)',
    ]);
  });

  it('uses the spec key as the flag when the field names none', () => {
    expect(fieldName('cache', SPEC.cache)).toBe('--cache / SHELF_CACHE');
  });
});

describe('cfg.bool', () => {
  const parse = (v: unknown) => loadConfig(SPEC, { deviceId: 'a', httpUpload: v }, {}).httpUpload;

  it.each([
    [true, true],
    ['true', true],
    ['1', true],
    ['yes', true],
    ['ON', true],
    [false, false],
    ['false', false],
    ['0', false],
    ['no', false],
    ['off', false],
  ])('reads %p as %p', (raw, expected) => {
    expect(parse(raw)).toBe(expected);
  });

  it('reads the environment the same way', () => {
    expect(loadConfig(SPEC, { deviceId: 'a' }, { AGENT_HTTP_UPLOAD: '1', SHELF_CACHE: 'false' })).toMatchObject({ httpUpload: true, cache: false });
  });

  it('refuses anything else', () => {
    expect(() => parse('2')).toThrow(ConfigError);
  });
});

describe(describeConfig.name, () => {
  it('marks required fields and switches', () => {
    expect(isRequired(SPEC.deviceId)).toBe(true);
    expect(isRequired(SPEC.httpPort)).toBe(false);
    expect(isSwitch(SPEC.httpUpload)).toBe(true);
    expect(isSwitch(SPEC.httpPort)).toBe(false);
    expect(describeConfig(SPEC)).toEqual([
      { env: 'DEVICE_ID', flag: 'device-id', description: 'device id, unique in the fleet', required: true, switch: false },
      { env: 'AGENT_HTTP_PORT', flag: 'http-port', description: 'health port', required: false, switch: false },
      { env: 'AGENT_HTTP_UPLOAD', flag: 'http-upload', description: 'accept uploads', required: false, switch: true },
      { env: 'SHELF_CACHE', flag: 'cache', description: 'use the cache', required: false, switch: true },
    ]);
  });
});
