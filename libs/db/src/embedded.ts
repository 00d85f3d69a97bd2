import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { createLogger, withTimeout } from '@shelfsight/common';
import { type AbandonedConnection, PgliteProtocolQueue, type PgliteProtocolQueueOptions } from './pglite-protocol-queue';

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
  /** How long a connection may hold the one backend idle while others wait (tests shorten them). */
  queue?: Pick<PgliteProtocolQueueOptions, 'exchangeIdleMs' | 'transactionIdleMs'>;
}

/** The socket server's per-connection handler, as far as closing one goes (not in its public types). */
interface SocketHandler {
  handlerId: number;
  handleError(err: Error): void;
}

/** Closes a connection the way pglite-socket closes an idle one (the handler then lets go of the queue). */
function closeConnection(server: PGLiteSocketServer, handlerId: number): void {
  const handlers = (server as unknown as { handlers: Set<SocketHandler> }).handlers;
  for (const h of handlers) if (h.handlerId === handlerId) h.handleError(new Error('Idle timeout: held the embedded database while others waited'));
}

function logAbandoned(c: AbandonedConnection): void {
  createLogger('embedded-db').warn(
    `closed a connection that held the embedded database ${c.inTransaction ? 'in a transaction' : 'in an unfinished query'} for ${Math.round(c.idleMs / 1000)} s without a word while others waited`,
    { last: c.last, inTransaction: c.inTransaction, idleMs: c.idleMs },
  );
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
  const queue = new PgliteProtocolQueue(db, { ...opts.queue, close: (id) => closeConnection(server, id), onAbandoned: (c) => logAbandoned(c) });
  // Before any connection: each handler takes the server's queue when it attaches.
  (server as unknown as { queryQueue: PgliteProtocolQueue }).queryQueue = queue;
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
      queue.close();
      await withTimeout(server.stop(), 5000);
      await db.close();
    },
  };
}
