import type { Logger } from '@shelfsight/common';

/** Path of the hub's current release key list (public: it is signed by the root). */
export const KEY_LIST_PATH = '/rollouts/key-list';

/**
 * The hub's current release key list, fetched once at start (GET /rollouts/key-list), so a
 * device has release keys before the retained MQTT copy arrives. Unverified here: the rollout
 * agent takes it only if a pinned root signed it. Undefined when the hub cannot be reached in
 * `timeoutMs` (the retained MQTT copy follows).
 */
export async function fetchKeyList(hubHttpUrl: string, logger: Logger, timeoutMs = 5000): Promise<unknown> {
  const url = new URL(KEY_LIST_PATH, hubHttpUrl).toString();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()) as unknown;
  } catch (err) {
    logger.warn('release key list not fetched from the hub; waiting for the retained MQTT copy', { url, err });
    return undefined;
  }
}
