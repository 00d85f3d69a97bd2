import type { Client } from 'pg';

/**
 * Work that one process of the cluster at a time may do (a rollout's delivery pass): a
 * PostgreSQL session advisory lock, taken on a dedicated connection so that the work itself
 * can use the pool (with DB_POOL_SIZE=1 a lock held on a pooled connection would starve it).
 * Callers in one process run one after another; across processes the lock serialises them.
 * The connection is opened on first use and again after it failed.
 */
export class ClusterLock {
  private client?: Promise<Client>;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly connect: () => Client) {}

  /** Runs `fn` holding the advisory lock `key` (waiting for another process that holds it). */
  run<T>(key: bigint, fn: () => Promise<T>): Promise<T> {
    const turn = this.chain.then(() => this.locked(key, fn));
    this.chain = turn.catch(() => undefined);
    return turn;
  }

  async close(): Promise<void> {
    await this.chain;
    const c = this.client;
    this.client = undefined;
    if (c) await (await c.catch(() => undefined))?.end().catch(() => undefined);
  }

  private async locked<T>(key: bigint, fn: () => Promise<T>): Promise<T> {
    const client = await this.session();
    try {
      await client.query('SELECT pg_advisory_lock($1::bigint)', [key.toString()]);
    } catch (err) {
      this.drop(client);
      throw err;
    }
    try {
      return await fn();
    } finally {
      // A connection that died released its locks with it.
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [key.toString()]).catch(() => this.drop(client));
    }
  }

  private session(): Promise<Client> {
    this.client ??= (async () => {
      const c = this.connect();
      c.on('error', () => this.drop(c));
      await c.connect();
      return c;
    })().catch((err: unknown) => {
      this.client = undefined;
      throw err;
    });
    return this.client;
  }

  private drop(c: Client): void {
    void this.client?.then((mine) => {
      if (mine === c) this.client = undefined;
    }, () => undefined);
    c.end().catch(() => undefined);
  }
}
