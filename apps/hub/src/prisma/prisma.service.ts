import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool } from 'pg';
import { PrismaClient, transactionMaxWaitMs } from '@shelfsight/db';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';

/**
 * The hub's one database client: Prisma over the pg driver adapter (no native engine),
 * on a connection pool of DB_POOL_SIZE. The ingest writer's hot path runs its two
 * statements on the same pool directly ({@link pool}): with parameters of thousands of
 * rows, Prisma's per-query work on them cost more CPU than the statements' own.
 */
@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  readonly pool: Pool;

  constructor(@Inject(HUB_CONFIG) config: HubConfig) {
    const pool = new Pool({ connectionString: config.databaseUrl!, max: config.dbPoolSize });
    // An idle connection dropped by a restarting database must not take the hub down; the next query reconnects.
    const log = new Logger('Database');
    pool.on('error', (err) => log.warn(`idle database connection failed: ${err.message}`));
    super({ adapter: new PrismaPg(pool), transactionOptions: { maxWait: transactionMaxWaitMs(config.dbPoolSize) } });
    this.pool = pool;
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
    // Prisma's pg adapter may already have ended the pool it was given; ending it twice logs an error.
    if (!this.pool.ended) await this.pool.end();
  }
}
