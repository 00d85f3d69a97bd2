import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDemoModel } from '@shelfsight/vision';
import { EXTERNAL_MQTT_URL, EXTERNAL_POSTGRES_URL, hostPort, portOpen } from './support/services';

/**
 * Probe the external PostgreSQL and Mosquitto once. With `CI` set they are required
 * (a missing one fails the run); elsewhere their tests are skipped with a line saying so,
 * and the embedded variants still run.
 */
export default async function globalSetup(): Promise<void> {
  const services = [
    { name: 'PostgreSQL', url: EXTERNAL_POSTGRES_URL, env: 'SHELFSIGHT_TEST_POSTGRES' },
    { name: 'Mosquitto', url: EXTERNAL_MQTT_URL, env: 'SHELFSIGHT_TEST_MQTT' },
  ];
  for (const s of services) {
    const { host, port } = hostPort(s.url);
    const up = await portOpen(host, port);
    process.env[s.env] = up ? '1' : '0';
    if (!up && process.env.CI) {
      throw new Error(`CI is set but ${s.name} does not answer at ${host}:${port}; start it (see .ci/run)`);
    }
    if (!up) process.stdout.write(`\n[tests] ${s.name} not reachable at ${host}:${port}: its tests are SKIPPED (the embedded variants run)\n`);
  }
  // The generated demo model (deterministic) is built once per machine and shared by the suites.
  const demo = await ensureDemoModel(join(tmpdir(), 'shelfsight-test-demo'));
  process.env.SHELFSIGHT_TEST_DEMO_MODEL = demo.modelDir;
}
