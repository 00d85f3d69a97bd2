import { ConfigError } from '@shelfsight/common';
import { loadHubConfig } from './hub-config';

describe('loadHubConfig', () => {
  it('authenticates devices on the embedded broker unless told otherwise', () => {
    expect(loadHubConfig({}, {}).mqttAuth).toBe('on');
    expect(loadHubConfig({}, { MQTT_AUTH: 'off' }).mqttAuth).toBe('off');
  });

  it('never echoes the password of a malformed DATABASE_URL or MQTT_URL, nor a rejected key', () => {
    const attempt = (env: Record<string, string>) => {
      try {
        loadHubConfig({}, env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    const db = attempt({ DATABASE_URL: 'mysql://shelf:Hunter2Secret@db:3306/shelf' });
    expect(db).toMatch(/DATABASE_URL: "mysql:\/\/shelf:\*\*\*@db:3306\/shelf" \(from DATABASE_URL\) is invalid: expected a URL with scheme postgres or postgresql/);
    expect(db).not.toContain('Hunter2Secret');
    expect(attempt({ MQTT_URL: 'http://hub:BrokerSecret@x:1' })).not.toContain('BrokerSecret');
    expect(attempt({ HUB_API_KEY: 'tooShortKey' })).not.toContain('tooShortKey');
    expect(attempt({ METRICS_TOKEN: 'shortToken' })).not.toContain('shortToken');
  });
});
