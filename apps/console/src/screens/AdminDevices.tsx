import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { ConfirmButton } from '../components/ConfirmButton';
import { DownloadText, ShownOnce } from '../components/ShownOnce';
import { ago } from '../format';

type Device = components['schemas']['DeviceDto'];
type Credential = components['schemas']['CredentialStatusDto'];
type Issued = components['schemas']['IssuedCredentialDto'];

/** A device's credential as the admin sees it: provisioned (enabled or revoked) or not at all. */
type CredentialState = Credential | 'none' | 'unknown';

/** The settings `shelf agent` reads, as `shelf device add` writes them (keep secret). */
function agentEnv(c: Issued, trustedKeysFile: string): string {
  return [
    `# ShelfSight device ${c.deviceId}: settings for \`shelf agent\` (keep secret: it holds the device's MQTT password)`,
    `DEVICE_ID=${c.deviceId}`,
    `MQTT_USERNAME=${c.username}`,
    `MQTT_PASSWORD=${c.password}`,
    `AGENT_TRUSTED_KEYS=${trustedKeysFile}`,
    // Where the agent downloads offered heads: this hub, as the admin reaches it.
    `AGENT_HUB_HTTP_URL=${new URL('.', window.location.href).href.replace(/\/$/, '')}`,
    '',
  ].join('\n');
}

const TRUSTED_KEYS_FILE = 'trusted-keys.txt';

/** Devices: the fleet with each device's credential; provision (credential + trusted keys shown once), rotate, revoke. */
export function AdminDevices() {
  const [devices, setDevices] = useState<Device[]>();
  const [credentials, setCredentials] = useState<Record<string, CredentialState>>({});
  const [issued, setIssued] = useState<{ credential: Issued; trustedKeys: string }>();
  const [error, setError] = useState<string>();
  /** Provisioned from this page but not yet seen by the hub (no birth yet): listed too. */
  const [extra, setExtra] = useState<string[]>([]);

  const loadCredential = useCallback(async (id: string) => {
    const { data, response } = await api.GET('/devices/{id}/credentials', { params: { path: { id } } });
    const state: CredentialState = data ?? (response.status === 404 ? 'none' : 'unknown');
    setCredentials((m) => ({ ...m, [id]: state }));
  }, []);

  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/devices');
    if (!data) {
      setError(errorText(err, response.status));
      return;
    }
    setError(undefined);
    setDevices(data);
    await Promise.all(data.map((d) => loadCredential(d.id)));
  }, [loadCredential]);
  useEffect(() => {
    void load();
  }, [load]);

  const issue = async (id: string): Promise<string | undefined> => {
    const { data, error: err, response } = await api.POST('/devices/{id}/credentials', { params: { path: { id } } });
    if (!data) return errorText(err, response.status);
    const keys = await api.GET('/rollouts/trusted-keys', { parseAs: 'text' });
    setIssued({ credential: data, trustedKeys: keys.data ?? '' });
    setExtra((x) => (x.includes(id) || devices?.some((d) => d.id === id) ? x : [...x, id]));
    await loadCredential(id);
    if (!keys.data) return `credential issued, but the trusted keys could not be read: ${errorText(keys.error, keys.response.status)}`;
  };
  const revoke = async (id: string): Promise<string | undefined> => {
    const { error: err, response } = await api.DELETE('/devices/{id}/credentials', { params: { path: { id } } });
    if (err) return errorText(err, response.status);
    await loadCredential(id);
  };

  const rows: Array<{ id: string; device?: Device }> = [...(devices ?? []).map((d) => ({ id: d.id, device: d })), ...extra.filter((id) => !devices?.some((d) => d.id === id)).map((id) => ({ id }))];

  return (
    <section aria-labelledby="devices-h">
      <h2 id="devices-h">Devices</h2>
      <ProvisionForm onProvision={issue} />
      {issued && (
        <div data-testid="issued-credential">
          <ShownOnce label={`Password of device ${issued.credential.deviceId} (MQTT user ${issued.credential.username})`} value={issued.credential.password} testId="device-password" onDismiss={() => setIssued(undefined)} />
          <p className="toolbar">
            Hand both files to the device (the settings as its <code>shelf agent</code> environment, e.g. a systemd <code>EnvironmentFile</code>; the keys at the path it names):
            <DownloadText name={`${issued.credential.deviceId}.env`} text={agentEnv(issued.credential, TRUSTED_KEYS_FILE)}>
              Download settings (.env)
            </DownloadText>
            <DownloadText name={TRUSTED_KEYS_FILE} text={issued.trustedKeys}>
              Download trusted keys
            </DownloadText>
          </p>
          <details>
            <summary>Trusted keys (rollout signing keys the device will accept)</summary>
            <pre data-testid="trusted-keys">{issued.trustedKeys}</pre>
          </details>
        </div>
      )}
      {error && <p className="error">{error}</p>}
      {devices && (
        <table data-testid="admin-devices">
          <thead>
            <tr>
              <th>Device</th>
              <th>Site</th>
              <th>Status</th>
              <th>Last seen</th>
              <th>Agent / model</th>
              <th>Credential</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map(({ id, device: d }) => {
              const c = credentials[id];
              const provisioned = typeof c === 'object';
              return (
                <tr key={id} data-device-id={id}>
                  <td>
                    <code>{id}</code> <span className="muted">{d?.kind}</span>
                  </td>
                  <td>{d?.site ?? '—'}</td>
                  <td>{d ? <span className={`pill ${d.online ? 'ok' : 'off'}`}>{d.online ? 'online' : 'offline'}</span> : <span className="muted">never connected</span>}</td>
                  <td title={d?.lastSeenAt ?? undefined}>{ago(d?.lastSeenAt)}</td>
                  <td>
                    {d?.agentVersion ?? '—'} / {d?.modelVersion ?? '—'}
                  </td>
                  <td data-testid="credential-state">
                    {c === undefined && '…'}
                    {c === 'none' && <span className="muted">not provisioned (open broker or bootstrap)</span>}
                    {c === 'unknown' && <span className="muted">unknown</span>}
                    {provisioned &&
                      (c.enabled ? (
                        <span title={`rotated ${c.rotatedAt}`}>
                          <span className="pill ok">enabled</span> <span className="muted">rotated {ago(c.rotatedAt)}</span>
                        </span>
                      ) : (
                        <span className="pill off" title={c.disabledAt ?? undefined}>
                          revoked {ago(c.disabledAt)}
                        </span>
                      ))}
                  </td>
                  <td className="toolbar">
                    {provisioned ? (
                      <ConfirmButton label={c.enabled ? 'Rotate' : 'Re-enable'} title={`${c.enabled ? 'Rotate' : 'Re-enable'} the credential of ${id}?`} onConfirm={() => issue(id)}>
                        <p>A new password is generated and shown once; the old one stops working, so the device must get the new settings before it reconnects.</p>
                      </ConfirmButton>
                    ) : (
                      <ConfirmButton label="Provision" title={`Provision ${id}?`} onConfirm={() => issue(id)}>
                        <p>Issues an MQTT password for this device, shown once.</p>
                      </ConfirmButton>
                    )}
                    {provisioned && c.enabled && (
                      <ConfirmButton label="Revoke" title={`Revoke device ${id}?`} danger onConfirm={() => revoke(id)}>
                        <p>The device is disconnected now and refused at its next connect, until it is provisioned again.</p>
                      </ConfirmButton>
                    )}
                  </td>
                </tr>
              );
            })}
            {rows.length === 0 && (
              <tr>
                <td colSpan={7} className="empty">
                  No devices yet: provision one above, or start an agent.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}

function ProvisionForm({ onProvision }: { onProvision: (id: string) => Promise<string | undefined> }) {
  const [id, setId] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const err = await onProvision(id.trim());
    setBusy(false);
    setError(err);
    if (!err) setId('');
  };
  return (
    <form className="filters" onSubmit={submit} aria-label="Provision device">
      <label>
        device id
        <input name="device-id" value={id} required placeholder="e.g. robot-07" onChange={(e) => setId(e.target.value)} />
      </label>
      <button type="submit" disabled={busy || !id.trim()}>
        Provision device
      </button>
      {error && <span className="error">{error}</span>}
    </form>
  );
}
