import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './openapi';

/**
 * The console's one way to the hub: a typed client generated from the hub's OpenAPI document
 * (`npm run openapi` writes ./openapi.d.ts; test/openapi.spec.ts fails when it drifts).
 * The API key lives in sessionStorage only (gone when the tab closes) and travels in the
 * X-API-Key header, never in a URL.
 */
const KEY_STORAGE = 'shelfsight.apiKey';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** Headers that authenticate a request made outside the client (CSV download, event stream). */
export function authHeaders(): Record<string, string> {
  const key = storedKey();
  return key ? { 'X-API-Key': key } : {};
}

const auth: Middleware = {
  onRequest({ request }) {
    const key = storedKey();
    if (key) request.headers.set('X-API-Key', key);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: new URL('.', window.location.href).href.replace(/\/$/, '') });
api.use(auth);

/** The hub's error body (`message` is a string or a list of them) as one line. */
export function errorText(error: unknown, status?: number): string {
  if (error && typeof error === 'object' && 'message' in error) {
    const m = (error as { message: unknown }).message;
    return Array.isArray(m) ? m.join('; ') : String(m);
  }
  return status ? `HTTP ${status}` : String(error);
}
