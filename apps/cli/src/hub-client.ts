import { z } from 'zod';
import { cfg } from '@shelfsight/common';

const IssuedCredentialSchema = z.object({ deviceId: z.string(), username: z.string(), password: z.string().min(1) });
export type IssuedCredential = z.infer<typeof IssuedCredentialSchema>;

/** The hub's admin API could not be reached, refused the request, or answered nonsense. */
export class HubRequestError extends Error {
  override name = 'HubRequestError';
  readonly code = 'HUB_REQUEST';
}

/**
 * Issue (or rotate) a device's MQTT credential through the hub's admin API
 * (`POST /devices/:id/credentials`, `X-API-Key`). The password is shown only here.
 */
export async function issueDeviceCredential(hubUrl: string, apiKey: string, deviceId: string): Promise<IssuedCredential> {
  const url = new URL(`/devices/${encodeURIComponent(deviceId)}/credentials`, hubUrl);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'X-API-Key': apiKey } });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new HubRequestError(`could not reach the hub at ${hubUrl} (${cause})`);
  }
  if (!res.ok) {
    const body = await res.text().catch(() => '');
    throw new HubRequestError(`hub ${hubUrl} refused a credential for ${deviceId}: HTTP ${res.status} ${body.slice(0, 200)}`);
  }
  const parsed = IssuedCredentialSchema.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new HubRequestError(`hub ${hubUrl} answered POST ${url.pathname} without a credential`);
  return parsed.data;
}

/** Where the hub is and the key to use: every `shelf` sub-command that talks to the hub's REST API takes these. */
export const HUB_TARGET_SPEC = {
  hubUrl: { env: 'HUB_URL', flag: 'hub-url', description: 'hub HTTP address', schema: cfg.string('http://127.0.0.1:3000') },
  apiKey: { env: 'HUB_API_KEY', flag: 'api-key', description: 'API key, sent as X-API-Key', schema: cfg.optionalString() },
} as const;

export function hubTargetOf(c: { hubUrl: string; apiKey?: string }): HubTarget {
  return { hubUrl: c.hubUrl, apiKey: c.apiKey };
}

export interface HubTarget {
  hubUrl: string;
  /** Sent as X-API-Key when set. */
  apiKey?: string;
}

/**
 * One request to the hub's REST API with the operator's key; `body` is sent as given
 * (a tar, a CSV) with its content type. A refusal becomes a one-line HubRequestError
 * naming the status and the hub's own message (`HTTP 422: head.bin checksum differs…`).
 */
export async function hubRequest(
  target: HubTarget,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: { data: Buffer | string; contentType: string },
): Promise<Response> {
  const url = new URL(path, target.hubUrl);
  const headers: Record<string, string> = {};
  if (target.apiKey) headers['X-API-Key'] = target.apiKey;
  if (body) headers['Content-Type'] = body.contentType;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, ...(body ? { body: typeof body.data === 'string' ? body.data : new Uint8Array(body.data) } : {}) });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new HubRequestError(`could not reach the hub at ${target.hubUrl} (${cause})`);
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    let message = text.slice(0, 300);
    try {
      const m = (JSON.parse(text) as { message?: unknown }).message;
      if (m !== undefined) message = Array.isArray(m) ? m.join('; ') : String(m);
    } catch {
      // not JSON: keep the text
    }
    throw new HubRequestError(`hub refused ${method} ${url.pathname}: HTTP ${res.status} ${message}`);
  }
  return res;
}

/** A request whose body (if any) is JSON; the raw response of a successful request (binary bodies such as thumbnails). */
export function hubFetch(target: HubTarget, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<Response> {
  return hubRequest(target, method, path, body === undefined ? undefined : { data: JSON.stringify(body), contentType: 'application/json' });
}

/** A JSON request whose JSON answer is validated with `schema`. */
export async function hubJson<S extends z.ZodType>(
  target: HubTarget,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  schema: S,
  body?: unknown,
): Promise<z.infer<S>> {
  const res = await hubFetch(target, method, path, body);
  const parsed = schema.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new HubRequestError(`hub ${target.hubUrl} answered ${method} ${path} with an unexpected body`);
  return parsed.data;
}

const ApiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.string(),
  createdBy: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});
export type ApiKeyInfo = z.infer<typeof ApiKeySchema>;
const CreatedApiKeySchema = ApiKeySchema.extend({ key: z.string().startsWith('shk_') });
export type CreatedApiKey = z.infer<typeof CreatedApiKeySchema>;

export function createApiKey(hubUrl: string, apiKey: string, input: { name: string; role: string; expiresAt?: string }): Promise<CreatedApiKey> {
  return hubJson({ hubUrl, apiKey }, 'POST', '/api-keys', CreatedApiKeySchema, input);
}

export function listApiKeys(hubUrl: string, apiKey: string): Promise<ApiKeyInfo[]> {
  return hubJson({ hubUrl, apiKey }, 'GET', '/api-keys', z.array(ApiKeySchema));
}

export function revokeApiKey(hubUrl: string, apiKey: string, id: string): Promise<ApiKeyInfo> {
  return hubJson({ hubUrl, apiKey }, 'POST', `/api-keys/${encodeURIComponent(id)}/revoke`, ApiKeySchema);
}

const CredentialStatusSchema = z.object({ deviceId: z.string(), enabled: z.boolean(), createdAt: z.string(), rotatedAt: z.string(), disabledAt: z.string().nullable() });
export type CredentialStatus = z.infer<typeof CredentialStatusSchema>;

export function deviceCredentialStatus(hubUrl: string, apiKey: string, deviceId: string): Promise<CredentialStatus> {
  return hubJson({ hubUrl, apiKey }, 'GET', `/devices/${encodeURIComponent(deviceId)}/credentials`, CredentialStatusSchema);
}

export function disableDeviceCredential(hubUrl: string, apiKey: string, deviceId: string): Promise<CredentialStatus> {
  return hubJson({ hubUrl, apiKey }, 'DELETE', `/devices/${encodeURIComponent(deviceId)}/credentials`, CredentialStatusSchema);
}
