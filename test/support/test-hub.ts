import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHubConfig, startHub, type HubHandle, type StartHubOptions } from '@shelfsight/hub';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases';
import { EXTERNAL_MQTT_URL } from './services';
import { SHARED_DIR } from './workspace-data';

export type BrokerKind = 'aedes' | 'mosquitto';

export interface TestHub {
  hub: HubHandle;
  db: TestDatabase;
  /** The hub's bootstrap admin key (HUB_API_KEY); `getJson` and `hubFetch` send it. */
  apiKey: string;
  /** Where the hub keeps its files. */
  dataDir: string;
  /** The settings it was started with (for a replica: {@link startTestReplica}). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The admin key every test hub is started with (unless a test overrides HUB_API_KEY):
 * `getJson` and `hubFetch` send it by default, so tests that are not about access need
 * no key handling.
 */
export const TEST_ADMIN_KEY = `test-admin-${randomBytes(12).toString('hex')}`;

/** A hub on a fresh database with the chosen broker, on free ports, silent (unless HUB_LOGS or `options` say). */
export async function startTestHub(
  dbKind: DatabaseKind,
  broker: BrokerKind,
  overrides: Record<string, string> = {},
  options: StartHubOptions = {},
): Promise<TestHub> {
  const db = await createTestDatabase(dbKind);
  const env: Record<string, string> = {
    HUB_API_KEY: TEST_ADMIN_KEY,
    // The open broker: tests that are about device authentication turn it on.
    MQTT_AUTH: 'off',
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    MQTT_PORT: '0',
    MQTT_HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'shelfsight-hub-')),
    MQTT_SHARE_GROUP: `test-${randomBytes(3).toString('hex')}`,
    // No training worker process unless a test asks for one (TRAINING_WORKER=child).
    TRAINING_WORKER: 'off',
    // No hourly purge of old detections unless a test asks (its first run, 30 s after start, could outlive a hub a test stops).
    DETECTION_RETENTION_DAYS: '0',
    // Tests present many refused keys from 127.0.0.1; the one about throttling them sets its own limit.
    AUTH_FAILURES_PER_MINUTE: '100000',
    // Tests write their datasets under the temporary folder; backbones are built-ins, TRAINING_BACKBONE or the workspace's models.
    TRAINING_DATASET_ROOTS: tmpdir(),
    TRAINING_BACKBONE_ROOTS: `${tmpdir()},${join(SHARED_DIR, 'models')}`,
    ...(broker === 'mosquitto' ? { MQTT_URL: EXTERNAL_MQTT_URL } : {}),
    // As the hub does for its own embedded PGlite: one connection (its socket server
    // interleaves connections only at transaction boundaries, so concurrent plain
    // queries on several connections can mix their protocol messages).
    ...(dbKind === 'pglite' ? { DB_POOL_SIZE: '1' } : {}),
    ...overrides,
  };
  const hub = await startHub(loadHubConfig({}, env), { logLevels: process.env.HUB_LOGS ? ['log', 'warn', 'error'] : false, ...options });
  return {
    hub,
    db,
    apiKey: env.HUB_API_KEY ?? '',
    dataDir: env.DATA_DIR!,
    env,
    async stop() {
      await hub.stop();
      await db.drop();
    },
  };
}

/**
 * Another replica of `of`: the same settings and database, its own DATA_DIR (nothing on
 * disk in common), ports and (unless MQTT_URL) embedded broker. Stop it before `of`.
 */
export async function startTestReplica(of: TestHub, overrides: Record<string, string> = {}, options: StartHubOptions = {}): Promise<{ hub: HubHandle; dataDir: string; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'shelfsight-replica-'));
  const hub = await startHub(loadHubConfig({}, { ...of.env, DATA_DIR: dataDir, ...overrides }), { logLevels: process.env.HUB_LOGS ? ['log', 'warn', 'error'] : false, ...options });
  return {
    hub,
    dataDir,
    async stop() {
      await hub.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Poll until `check` returns a value that is not undefined, or fail after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `fetch` with an API key (the test admin key unless `apiKey` says otherwise; null = none). */
export function hubFetch(url: string, init: RequestInit & { apiKey?: string | null } = {}): Promise<Response> {
  const { apiKey = TEST_ADMIN_KEY, headers, ...rest } = init;
  const h = new Headers(headers);
  if (apiKey !== null && !h.has('X-API-Key')) h.set('X-API-Key', apiKey);
  return fetch(url, { ...rest, headers: h });
}

export async function getJson<T>(url: string, apiKey: string | null = TEST_ADMIN_KEY): Promise<{ status: number; body: T }> {
  const res = await hubFetch(url, { apiKey });
  return { status: res.status, body: (await res.json()) as T };
}
