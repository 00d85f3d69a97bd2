import { startEmbeddedPostgres } from '@shelfsight/db';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScratchDatabase } from '@shelfsight/cli';
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
  const scratch = await createScratchDatabase(EXTERNAL_POSTGRES_URL, 'shelfsight_test');
  return { kind, url: scratch.url, drop: () => scratch.drop() };
}
