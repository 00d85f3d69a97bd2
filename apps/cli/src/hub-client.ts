import { z } from 'zod';

const IssuedCredentialSchema = z.object({ deviceId: z.string(), username: z.string(), password: z.string().min(1) });
export type IssuedCredential = z.infer<typeof IssuedCredentialSchema>;

/**
 * Issue (or rotate) a device's MQTT credential through the hub's admin API
 * (`POST /devices/:id/credentials`, `X-API-Key`). The password is shown only here.
 */
export async function issueDeviceCredential(hubUrl: string, apiKey: string, deviceId: string): Promise<IssuedCredential> {
  const res = await fetch(new URL(`/devices/${encodeURIComponent(deviceId)}/credentials`, hubUrl), { method: 'POST', headers: { 'X-API-Key': apiKey } });
  if (!res.ok) {
    const body = await res.text().catch(() => '');
    throw new Error(`hub ${hubUrl} refused a credential for ${deviceId}: HTTP ${res.status} ${body.slice(0, 200)}`);
  }
  return IssuedCredentialSchema.parse(await res.json());
}
