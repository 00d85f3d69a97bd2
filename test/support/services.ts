import { connect as netConnect } from 'node:net';

/** External services the integration tests may use; CI must have them, elsewhere they are optional. */
export const EXTERNAL_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const EXTERNAL_MQTT_URL = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** Set by the global setup: '1' when the service answered. */
export const hasExternalPostgres = (): boolean => process.env.SHELFSIGHT_TEST_POSTGRES === '1';
export const hasExternalMqtt = (): boolean => process.env.SHELFSIGHT_TEST_MQTT === '1';
