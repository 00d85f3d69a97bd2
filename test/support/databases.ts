import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '@shelfsight/db';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXTERNAL_POSTGRES_URL } from './services';

export type DatabaseKind = 'pglite' | 'postgres';

export interface TestDatabase {
  kind: DatabaseKind;
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one suite: a new database on the machine's PostgreSQL
 * (dropped afterwards), or an embedded PGlite in a temporary folder.
 */
export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), 'shelfsight-pglite-'));
    const pg = await startEmbeddedPostgres({ dataDir: dir });
    return {
      kind,
      url: pg.url,
      async drop() {
        await pg.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `shelfsight_test_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: EXTERNAL_POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(EXTERNAL_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    kind,
    url: url.toString(),
    async drop() {
      const c = new Client({ connectionString: EXTERNAL_POSTGRES_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
