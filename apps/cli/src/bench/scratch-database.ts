import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { z } from 'zod';

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the server of `serverUrl`, for one benchmark run. */
export async function createScratchDatabase(serverUrl: string, prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** The `--database-url` option of the benchmarks that work in a scratch database (one home). */
export const SCRATCH_DATABASE_OPTION = {
  env: 'DATABASE_URL',
  flag: 'database-url',
  description: 'PostgreSQL server (a scratch database is created and dropped)',
  schema: z.string().default('postgresql://postgres@127.0.0.1:5432/postgres'),
} as const;
