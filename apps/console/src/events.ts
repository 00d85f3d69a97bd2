import { fetchEventSource } from '@microsoft/fetch-event-source';
import { useEffect, useRef } from 'react';
import { authHeaders } from './api/client';
import type { components } from './api/openapi';

/** What `GET /events` pushes (apps/hub/src/events/hub-events.ts), by event name. */
export interface HubEvents {
  device: components['schemas']['DeviceDto'];
  training: components['schemas']['TrainingJobDto'];
  inventory: { site: string; at: string };
  rollout: { id: string; at: string };
}
export type HubEventName = keyof HubEvents;
type Listener = (data: never) => void;

/**
 * One stream per tab, shared by every live screen: opened with the first listener, closed
 * with the last. A fetch-based reader, because EventSource cannot send the X-API-Key header
 * (the key never goes into a URL); it reconnects by itself after an outage.
 */
const listeners = new Map<HubEventName, Set<Listener>>();
let abort: AbortController | undefined;
/** Called when the stream (re)opens: screens reload what they may have missed. */
const reopenListeners = new Set<() => void>();

function open(): void {
  abort = new AbortController();
  void fetchEventSource(new URL('events', window.location.href).href, {
    headers: authHeaders(),
    signal: abort.signal,
    openWhenHidden: true,
    onopen: async (res) => {
      if (!res.ok) throw new Error(`events: HTTP ${res.status}`);
      for (const f of reopenListeners) f();
    },
    onmessage: (msg) => {
      const set = listeners.get(msg.event as HubEventName);
      if (!set || !msg.data) return;
      const data = JSON.parse(msg.data) as never;
      for (const f of set) f(data);
    },
    onerror: () => 2000, // retry in 2 s
  });
}

function total(): number {
  let n = 0;
  for (const s of listeners.values()) n += s.size;
  return n;
}

export function subscribe<N extends HubEventName>(name: N, fn: (data: HubEvents[N]) => void, onReopen?: () => void): () => void {
  let set = listeners.get(name);
  if (!set) listeners.set(name, (set = new Set()));
  set.add(fn as Listener);
  if (onReopen) reopenListeners.add(onReopen);
  if (!abort) open();
  return () => {
    set.delete(fn as Listener);
    if (onReopen) reopenListeners.delete(onReopen);
    if (total() === 0) {
      abort?.abort();
      abort = undefined;
    }
  };
}

/** Run `fn` for each `name` event while the component is mounted (and `onReopen` when the stream reconnects). */
export function useHubEvent<N extends HubEventName>(name: N, fn: (data: HubEvents[N]) => void, onReopen?: () => void): void {
  const ref = useRef({ fn, onReopen });
  ref.current = { fn, onReopen };
  useEffect(() => subscribe(name, (d) => ref.current.fn(d), () => ref.current.onReopen?.()), [name]);
}

/** After sign-in or sign-out: reconnect with the new key (if anything listens). */
export function restartEvents(): void {
  if (!abort) return;
  abort.abort();
  open();
}
