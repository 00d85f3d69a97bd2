import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '@shelfsight/db';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';

/** The hub's one database client (Prisma over the pg driver adapter, no native engine). */
@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  constructor(@Inject(HUB_CONFIG) config: HubConfig) {
    super({ adapter: new PrismaPg({ connectionString: config.databaseUrl!, max: config.dbPoolSize }) });
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
  }
}
