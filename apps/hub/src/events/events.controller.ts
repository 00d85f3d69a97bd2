import { Controller, type MessageEvent, Sse } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { interval, map, merge, type Observable } from 'rxjs';
import { RequireRole } from '../auth/roles';
import { EventBus } from './event-bus';

/** A comment line every this often keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

@ApiTags('events')
@RequireRole('viewer')
@Controller()
export class EventsController {
  constructor(private readonly bus: EventBus) {}

  /**
   * Live updates for the console as server-sent events (`event: device|training|inventory`,
   * `data: <json>`; see hub-events.ts). Authorised like the API (X-API-Key header: use a
   * fetch-based reader, EventSource cannot send headers).
   */
  @ApiOperation({ summary: 'Stream live events (server-sent events)' })
  @Sse('events')
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ description: 'text/event-stream of device, training and inventory events' })
  events(): Observable<MessageEvent> {
    const events = this.bus.stream().pipe(map((e): MessageEvent => ({ type: e.name, data: e.data as object })));
    const keepalive = interval(KEEPALIVE_MS).pipe(map((): MessageEvent => ({ type: 'keepalive', data: {} })));
    return merge(events, keepalive);
  }
}
