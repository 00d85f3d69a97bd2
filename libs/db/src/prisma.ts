import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client';

export { PrismaClient, Prisma } from './generated/client';
export type { Device, Detection, LocationState } from './generated/client';

/**
 * How long an interactive transaction may wait for a connection of its own. Prisma's default (2 s)
 * suits a pool of several connections; with one or two (the embedded database, a worker) every
 * transaction queues behind the statements of the others, and a busy second is not an error.
 */
export function transactionMaxWaitMs(poolSize: number): number {
  return poolSize <= 2 ? 15_000 : 2_000;
}

/** A Prisma client over the `pg` driver adapter: no native query engine needed. */
export function createPrismaClient(databaseUrl: string, poolSize = 10): PrismaClient {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: poolSize });
  return new PrismaClient({ adapter, transactionOptions: { maxWait: transactionMaxWaitMs(poolSize) } });
}
