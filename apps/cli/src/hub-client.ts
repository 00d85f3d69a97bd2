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

export interface HubTarget {
  hubUrl: string;
  /** Sent as X-API-Key when set. */
  apiKey?: string;
}

/**
 * One request to the hub's REST API; the JSON answer validated with `schema`. A refusal
 * becomes a one-line HubRequestError naming the status and the hub's message.
 */
export async function hubJson<S extends z.ZodType>(
  target: HubTarget,
  method: 'GET' | 'POST',
  path: string,
  schema: S,
  body?: unknown,
): Promise<z.infer<S>> {
  const res = await hubFetch(target, method, path, body);
  const parsed = schema.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new HubRequestError(`hub ${target.hubUrl} answered ${method} ${path} with an unexpected body`);
  return parsed.data;
}

/** The raw response of a successful request (for binary bodies such as thumbnails). */
export async function hubFetch(target: HubTarget, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
  const url = new URL(path, target.hubUrl);
  const headers: Record<string, string> = {};
  if (target.apiKey) headers['X-API-Key'] = target.apiKey;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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
