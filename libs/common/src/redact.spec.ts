import { z } from 'zod';
import { ConfigError, loadConfig, cfg } from './config';
import { redactUrl, redactUrls } from './redact';

describe(redactUrl.name, () => {
  it('replaces the password of a URL, keeps the rest', () => {
    expect(redactUrl('postgres://app:s3cr3t@db.example:5432/shelf')).toBe('postgres://app:***@db.example:5432/shelf');
    expect(redactUrl('mqtt://hub:p%40ss@broker:1883')).toBe('mqtt://hub:***@broker:1883');
    expect(redactUrl('mqtt://broker:1883')).toBe('mqtt://broker:1883');
    expect(redactUrl('postgres://db/x?sslmode=require&password=hunter2')).toBe('postgres://db/x?sslmode=require&password=***');
  });

  it('redacts strings that do not even parse as URLs', () => {
    const out = redactUrl('postgres://app:pa ss/w@rd@db:5432/x');
    expect(out).not.toMatch(/pa ss|w@rd/);
    expect(out).toContain('db:5432/x');
  });

  it('finds URLs inside a text', () => {
    expect(redactUrls('connecting to mqtt://u:topsecret@h:1 and postgres://x:y@z/db now')).toBe('connecting to mqtt://u:***@h:1 and postgres://x:***@z/db now');
  });
});

describe('configuration errors', () => {
  const spec = {
    databaseUrl: { env: 'DATABASE_URL', description: 'db', schema: cfg.url(['postgres']), secret: true },
    apiKey: { env: 'API_KEY', description: 'key', schema: z.string().min(16).optional(), secret: true },
    other: { env: 'OTHER', description: 'a URL that is not marked secret', schema: cfg.url(['http']) },
  };
  const message = (env: Record<string, string>) => {
    try {
      loadConfig(spec, {}, env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('configuration was accepted');
  };

  it('never echo a password of a rejected URL', () => {
    const m = message({ DATABASE_URL: 'mysql://app:VerySecret1@db:3306/x' });
    expect(m).toContain('DATABASE_URL');
    expect(m).toContain('expected a URL with scheme postgres');
    expect(m).not.toContain('VerySecret1');
    expect(message({ DATABASE_URL: 'postgres://app:Very Secret@db:99999/x' })).not.toContain('Very Secret');
    expect(message({ OTHER: 'ftp://u:AlsoSecret@h' })).not.toContain('AlsoSecret');
  });

  it('never echo a rejected secret', () => {
    const m = message({ API_KEY: 'short-secret' });
    expect(m).toContain('API_KEY: "***"');
    expect(m).not.toContain('short-secret');
  });
});
