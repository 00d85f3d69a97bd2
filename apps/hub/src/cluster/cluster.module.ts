import { Global, Inject, Injectable, Module, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { Client } from 'pg';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { PrismaService } from '../prisma/prisma.service';
import { ClusterBus, PgNotifyClusterBus } from './cluster-bus';
import { ClusterLock } from './cluster-lock';

/** Starts the bus's listening connection with the app and closes both dedicated connections with it. */
@Injectable()
class ClusterLifecycle implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    @Inject(ClusterBus) private readonly bus: ClusterBus,
    private readonly lock: ClusterLock,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.bus instanceof PgNotifyClusterBus) await this.bus.start();
  }

  async onModuleDestroy(): Promise<void> {
    if (this.bus instanceof PgNotifyClusterBus) await this.bus.close();
    await this.lock.close();
  }
}

/**
 * What the hub replicas of one database tell each other (PostgreSQL LISTEN/NOTIFY) and the
 * work only one of them may do at a time (advisory locks). A single hub (the embedded
 * database) runs the same code: it hears nobody but itself, which it ignores.
 */
@Global()
@Module({
  providers: [
    {
      provide: ClusterBus,
      inject: [PrismaService, HUB_CONFIG],
      useFactory: (db: PrismaService, config: HubConfig) => new PgNotifyClusterBus(db.pool, () => new Client({ connectionString: config.databaseUrl! })),
    },
    { provide: ClusterLock, inject: [HUB_CONFIG], useFactory: (config: HubConfig) => new ClusterLock(() => new Client({ connectionString: config.databaseUrl! })) },
    ClusterLifecycle,
  ],
  exports: [ClusterBus, ClusterLock],
})
export class ClusterModule {}
