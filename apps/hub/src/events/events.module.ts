import { Global, Module } from '@nestjs/common';
import { ClusterBus } from '../cluster/cluster-bus';
import { EventBus, realTimers } from './event-bus';
import { EventsController } from './events.controller';

/** Live events for people (SSE at GET /events, from every replica); any feature injects EventBus to publish. */
@Global()
@Module({
  controllers: [EventsController],
  providers: [{ provide: EventBus, inject: [ClusterBus], useFactory: (cluster: ClusterBus) => new EventBus(realTimers, cluster) }],
  exports: [EventBus],
})
export class EventsModule {}
