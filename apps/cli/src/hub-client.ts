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

/**
 * One JSON request to the hub's REST API (`X-API-Key` when given). A refusal becomes a
 * HubRequestError with the hub's message; the body is checked with `schema`.
 */
export async function hubRequest<T>(hubUrl: string, apiKey: string | undefined, method: 'GET' | 'POST', path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
  const url = new URL(path, hubUrl);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { ...(apiKey ? { 'X-API-Key': apiKey } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new HubRequestError(`could not reach the hub at ${hubUrl} (${cause})`);
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) {
    let message = text.slice(0, 300);
    try {
      const m = (JSON.parse(text) as { message?: unknown }).message;
      if (m !== undefined) message = Array.isArray(m) ? m.join('; ') : String(m);
    } catch {
      // not JSON: show the text
    }
    throw new HubRequestError(`hub ${hubUrl} refused ${method} ${url.pathname}: HTTP ${res.status} ${message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HubRequestError(`hub ${hubUrl} answered ${method} ${url.pathname} with something that is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new HubRequestError(`hub ${hubUrl} answered ${method} ${url.pathname} with an unexpected body: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}
