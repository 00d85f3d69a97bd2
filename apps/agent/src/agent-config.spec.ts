import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, silentLogger } from '@shelfsight/common';
import { startAgent } from './agent';
import { agentConfig } from './config';

describe('startAgent configuration', () => {
  it('refuses --http-upload without --http-port before it opens the classifier, outbox or journal', async () => {
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'agent-config-'));
    try {
      const stateDir = path.join(tmp, 'state');
      const config = agentConfig({
        deviceId: 'cfg-1',
        site: 'site-1',
        mqttUrl: 'mqtt://127.0.0.1:1',
        framesDir: path.join(tmp, 'frames'),
        stateDir,
        httpUpload: true,
        httpPort: 0,
        // Loading this classifier would fail with another error: the ConfigError proves it was never tried.
        classifier: 'tfjs',
        modelDir: path.join(tmp, 'no-such-model'),
      });
      const started = startAgent(config, { logger: silentLogger });
      await expect(started).rejects.toThrow(ConfigError);
      await expect(started).rejects.toThrow(/AGENT_HTTP_UPLOAD \(--http-upload\) needs AGENT_HTTP_PORT/);
      expect(existsSync(stateDir)).toBe(false);
      expect(existsSync(path.join(stateDir, 'outbox'))).toBe(false);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
});
