import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHubConfig, startHub } from '@shelfsight/hub';
import { createTestDatabase } from './support/databases';
import { EXTERNAL_MQTT_URL, hasExternalMqtt } from './support/services';

const d = hasExternalMqtt() ? describe : describe.skip;
d('secrets in the hub\u2019s log', () => {
  it('never shows the MQTT password (nor the bootstrap key) while starting and stopping', async () => {
    const password = `Secret${randomBytes(6).toString('hex')}`;
    const apiKey = `key-${randomBytes(12).toString('hex')}`;
    const url = new URL(EXTERNAL_MQTT_URL);
    url.username = 'shelfsight-hub';
    url.password = password;
    const db = await createTestDatabase('pglite');
    const written: string[] = [];
    // Both the pino lines and anything printed directly to stderr (the first-start key box).
    const original = process.stderr.write.bind(process.stderr);
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      return (original as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write);
    try {
      const hub = await startHub(
        loadHubConfig({}, {
          HTTP_PORT: '0',
          HTTP_HOST: '127.0.0.1',
          DATABASE_URL: db.url,
          MQTT_URL: url.toString(),
          HUB_API_KEY: apiKey,
          MQTT_AUTH: 'off',
          MQTT_SHARE_GROUP: `secrets-${randomBytes(3).toString('hex')}`,
          DATA_DIR: mkdtempSync(join(tmpdir(), 'shelfsight-secrets-')),
        }),
        { logLevels: ['log', 'warn', 'error'], logDestination: { write: (line: string) => void written.push(line) } },
      );
      await hub.stop();
    } finally {
      spy.mockRestore();
      await db.drop();
    }
    const log = written.join('');
    expect(log).toContain('REST API on');
    expect(log).toContain('shelfsight-hub:***@');
    expect(log).not.toContain(password);
    expect(log).not.toContain(apiKey);
  });
});
