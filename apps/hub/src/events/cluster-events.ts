import { z } from 'zod';
import type { HubEvent, HubEventName, HubEvents } from './hub-events';

/** The cluster bus kind of console events (see EventBus). */
export const EVENT_KIND = 'event';

/** Reads an event again by its id (for events too large to travel whole). */
export type EventLoader = (id: string) => Promise<HubEvents[HubEventName] | undefined>;

const EVENT_NAMES = ['device', 'training', 'inventory', 'rollout'] as const satisfies readonly HubEventName[];
// Every event name travels (a name added to HubEvents and not here fails to compile).
type Missing = Exclude<HubEventName, (typeof EVENT_NAMES)[number]>;
const allNamesListed: Missing extends never ? true : never = true;
void allNamesListed;

const CoalesceSchema = z.string().min(1).max(200).optional();
const WholeSchema = z.object({ n: z.enum(EVENT_NAMES), d: z.record(z.string(), z.unknown()), c: CoalesceSchema });
const RefSchema = z.object({ n: z.enum(EVENT_NAMES), ref: z.string().min(1).max(200), c: CoalesceSchema });

/** An event as it travels: whole (`d`) or by reference, with its coalesce key (`c`) so the receiver coalesces it too. */
export type WireEvent = { n: HubEventName; d: unknown; c?: string } | { n: HubEventName; ref: string; c?: string };

/** What an event's `ref` is: its id (device, training job, rollout) or its site (inventory). */
export function eventRef(event: HubEvent): string {
  const data = event.data as { id?: unknown; site?: unknown };
  return String(data.id ?? data.site);
}

/** An event for the cluster bus: whole when it `fits`, else its name and {@link eventRef}. */
export function encodeClusterEvent(event: HubEvent, fits: (body: unknown) => boolean, coalesce?: string): WireEvent {
  const c = coalesce === undefined ? {} : { c: coalesce };
  const whole = { n: event.name, d: event.data, ...c };
  return fits(whole) ? whole : { n: event.name, ref: eventRef(event), ...c };
}

/**
 * The event another replica sent: as it came, or read again by its loader (undefined when
 * the thing is gone by now). Throws on a body that is not an event, or on a reference to an
 * event nobody here can read again.
 */
export async function decodeClusterEvent(
  body: unknown,
  loaderOf: (name: HubEventName) => EventLoader | undefined,
): Promise<{ event: HubEvent; coalesce?: string } | undefined> {
  const whole = WholeSchema.safeParse(body);
  if (whole.success) return withKey({ name: whole.data.n, data: whole.data.d } as HubEvent, whole.data.c);
  const ref = RefSchema.safeParse(body);
  if (!ref.success) throw new Error('not an event');
  const loader = loaderOf(ref.data.n);
  if (!loader) throw new Error(`a '${ref.data.n}' event came as a reference and nothing here reads it again`);
  const data = await loader(ref.data.ref);
  return data === undefined ? undefined : withKey({ name: ref.data.n, data } as HubEvent, ref.data.c);
}

const withKey = (event: HubEvent, coalesce: string | undefined) => (coalesce === undefined ? { event } : { event, coalesce });
