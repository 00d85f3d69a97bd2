import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { withTimeout } from '@shelfsight/common';

export interface EmbeddedPostgres {
  /** A `postgresql://` URL that `pg` and Prisma's pg adapter use unchanged. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Folder holding the database files; created if missing. */
  dataDir: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** PGlite runs one query at a time; the socket server queues the connections' queries. */
  maxConnections?: number;
}

/**
 * PostgreSQL compiled to WASM (PGlite) in a data folder, served over the PostgreSQL
 * wire protocol on a local port, so the hub talks to it exactly as to a real server.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  mkdirSync(opts.dataDir, { recursive: true });
  const db = await PGlite.create(opts.dataDir);
  const host = opts.host ?? '127.0.0.1';
  const server = new PGLiteSocketServer({ db, host, port: opts.port ?? 0, maxConnections: opts.maxConnections ?? 64 });
  try {
    await server.start();
  } catch (err) {
    await db.close();
    throw err;
  }
  const port = Number(server.getServerConn().split(':').pop());
  let stopped = false;
  return {
    url: `postgresql://postgres:postgres@${host}:${port}/postgres?sslmode=disable`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      // The socket server waits for its clients to go; a client that never does must not block the close.
      await withTimeout(server.stop(), 5000);
      await db.close();
    },
  };
}
