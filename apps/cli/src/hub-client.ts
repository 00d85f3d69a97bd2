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

export interface HubAccess {
  hubUrl: string;
  /** X-API-Key; unset = no key (a hub with open access). */
  apiKey?: string;
}

/**
 * One request to the hub's REST API with the operator's key. Refusals become a one-line
 * HubRequestError with the hub's own message (`HTTP 422: head.bin checksum differs…`).
 */
export async function hubRequest(access: HubAccess, method: string, path: string, body?: { data: Buffer | string; contentType: string }): Promise<Response> {
  const url = new URL(path, access.hubUrl);
  const headers: Record<string, string> = {};
  if (access.apiKey) headers['X-API-Key'] = access.apiKey;
  if (body) headers['Content-Type'] = body.contentType;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, ...(body ? { body: typeof body.data === 'string' ? body.data : new Uint8Array(body.data) } : {}) });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new HubRequestError(`could not reach the hub at ${access.hubUrl} (${cause})`);
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
    throw new HubRequestError(`${method} ${url.pathname}: HTTP ${res.status} ${message}`);
  }
  return res;
}

/** GET a JSON document from the hub. */
export async function hubJson<T>(access: HubAccess, path: string): Promise<T> {
  return (await (await hubRequest(access, 'GET', path)).json()) as T;
}

/** A JSON request (body sent as JSON) whose answer is checked with `schema`. */
export async function hubJsonRequest<T>(access: HubAccess, method: 'GET' | 'POST', path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
  const res = await hubRequest(access, method, path, body !== undefined ? { data: JSON.stringify(body), contentType: 'application/json' } : undefined);
  const parsed = schema.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new HubRequestError(`${method} ${path}: unexpected answer (${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message})`);
  return parsed.data;
}
