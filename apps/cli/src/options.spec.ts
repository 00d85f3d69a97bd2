import { Command } from 'commander';
import { z } from 'zod';
import { cfg, loadConfig, type ConfigSpec } from '@shelfsight/common';
import { addConfigOptions, flagsFrom } from './options';

const SPEC = {
  deviceId: { env: 'DEVICE_ID', flag: 'device-id', description: 'device id', schema: z.string().min(1) },
  httpPort: { env: 'AGENT_HTTP_PORT', flag: 'http-port', description: 'health port', schema: cfg.port(0) },
  httpUpload: { env: 'AGENT_HTTP_UPLOAD', flag: 'http-upload', description: 'accept uploads', schema: cfg.bool(false) },
  cache: { env: 'SHELF_CACHE', flag: 'cache', description: 'use the cache', schema: cfg.bool(true) },
} satisfies ConfigSpec;

describe(addConfigOptions.name, () => {
  let sut: Command;

  /** Parse args like the CLI does, then load the configuration from them and `env`. */
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    sut.parse(['node', 'shelf', ...args]);
    return loadConfig(SPEC, flagsFrom(SPEC, sut.opts()), env);
  };

  beforeEach(() => {
    sut = addConfigOptions(new Command('agent').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined }), SPEC);
  });

  it('takes values of ordinary settings', () => {
    expect(run(['--device-id', 'd1', '--http-port=8080'])).toMatchObject({ deviceId: 'd1', httpPort: 8080 });
  });

  it('registers on/off settings as bare switches', () => {
    expect(run(['--device-id', 'd1', '--http-upload'])).toMatchObject({ httpUpload: true });
  });

  it.each([
    [['--http-upload=false'], false],
    [['--http-upload', 'false'], false],
    [['--http-upload', '1'], true],
    [['--http-upload=yes'], true],
  ])('accepts an explicit value: %p', (args, expected) => {
    expect(run(['--device-id', 'd1', ...args]).httpUpload).toBe(expected);
  });

  it('offers --no-<flag> for switches that are on by default', () => {
    expect(run(['--device-id', 'd1']).cache).toBe(true);
    expect(run(['--device-id', 'd1', '--no-cache']).cache).toBe(false);
    expect(run(['--device-id', 'd1', '--cache=off']).cache).toBe(false);
  });

  it('lets the environment supply what no flag gives, a switch included', () => {
    expect(run([], { DEVICE_ID: 'env', AGENT_HTTP_UPLOAD: 'true', SHELF_CACHE: '0' })).toMatchObject({ deviceId: 'env', httpUpload: true, cache: false });
    // A flag wins over the environment.
    expect(run(['--http-upload=false'], { DEVICE_ID: 'env', AGENT_HTTP_UPLOAD: 'true' }).httpUpload).toBe(false);
  });

  it('does not let commander refuse a required setting (the environment may hold it), but says it is required in --help', () => {
    expect(() => run([])).toThrow('--device-id / DEVICE_ID is required: device id');
    const help = sut.helpInformation();
    expect(help).toMatch(/--device-id <value>\s+device id \[env DEVICE_ID\] \(required\)/);
    expect(help).toMatch(/--http-port <value>\s+health port \[env AGENT_HTTP_PORT\] \(default: 0\)/);
    expect(help).toMatch(/--http-upload \[bool\]\s+accept uploads \[env AGENT_HTTP_UPLOAD\] \(default: false\)/);
    expect(help).toMatch(/--no-cache\s+same as --cache=false/);
  });
});
