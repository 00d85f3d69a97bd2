import { z } from 'zod';

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

/** One call of the hub's REST API with an API key; the answer checked against `schema`. */
async function hubCall<S extends z.ZodType>(hubUrl: string, apiKey: string, method: string, path: string, schema: S, body?: unknown): Promise<z.infer<S>> {
  const url = new URL(path, hubUrl);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { 'X-API-Key': apiKey, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new HubRequestError(`could not reach the hub at ${hubUrl} (${cause})`);
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
    throw new HubRequestError(`hub ${hubUrl} refused ${method} ${url.pathname}: HTTP ${res.status} ${message}`);
  }
  const parsed = schema.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new HubRequestError(`hub ${hubUrl} answered ${method} ${url.pathname} with something unexpected`);
  return parsed.data;
}

export function createApiKey(hubUrl: string, apiKey: string, input: { name: string; role: string; expiresAt?: string }): Promise<CreatedApiKey> {
  return hubCall(hubUrl, apiKey, 'POST', '/api-keys', CreatedApiKeySchema, input);
}

export function listApiKeys(hubUrl: string, apiKey: string): Promise<ApiKeyInfo[]> {
  return hubCall(hubUrl, apiKey, 'GET', '/api-keys', z.array(ApiKeySchema));
}

export function revokeApiKey(hubUrl: string, apiKey: string, id: string): Promise<ApiKeyInfo> {
  return hubCall(hubUrl, apiKey, 'POST', `/api-keys/${encodeURIComponent(id)}/revoke`, ApiKeySchema);
}

const CredentialStatusSchema = z.object({ deviceId: z.string(), enabled: z.boolean(), createdAt: z.string(), rotatedAt: z.string(), disabledAt: z.string().nullable() });
export type CredentialStatus = z.infer<typeof CredentialStatusSchema>;

export function deviceCredentialStatus(hubUrl: string, apiKey: string, deviceId: string): Promise<CredentialStatus> {
  return hubCall(hubUrl, apiKey, 'GET', `/devices/${encodeURIComponent(deviceId)}/credentials`, CredentialStatusSchema);
}

export function disableDeviceCredential(hubUrl: string, apiKey: string, deviceId: string): Promise<CredentialStatus> {
  return hubCall(hubUrl, apiKey, 'DELETE', `/devices/${encodeURIComponent(deviceId)}/credentials`, CredentialStatusSchema);
}
