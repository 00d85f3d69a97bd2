import { Global, Module } from '@nestjs/common';
import { EventBus } from './event-bus';
import { EventsController } from './events.controller';

/** Live events for people (SSE at GET /events); any feature injects EventBus to publish. */
@Global()
@Module({
  controllers: [EventsController],
  providers: [{ provide: EventBus, useFactory: () => new EventBus() }],
  exports: [EventBus],
})
export class EventsModule {}
