import { useCallback, useEffect, useState } from 'react';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { useHubEvent } from '../events';
import { ago } from '../format';

type Device = components['schemas']['DeviceDto'];
/** The fields of a heartbeat this screen shows (libs/contracts HeartbeatSchema). */
interface Heartbeat {
  framesPerS?: number;
  p95LatencyMs?: number;
  outboxDepth?: number;
  activeModelVersion?: string;
}

export default function FleetScreen() {
  const [devices, setDevices] = useState<Map<string, Device>>(new Map());
  const [error, setError] = useState<string>();
  const [, tick] = useState(0);

  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/devices');
    if (data) {
      setDevices(new Map(data.map((d) => [d.id, d])));
      setError(undefined);
    } else setError(errorText(err, response.status));
  }, []);
  useEffect(() => {
    void load();
    const t = setInterval(() => tick((n) => n + 1), 5000); // "last seen" keeps ageing
    return () => clearInterval(t);
  }, [load]);
  useHubEvent('device', (d) => setDevices((m) => new Map(m).set(d.id, d)), load);

  const list = [...devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  const online = list.filter((d) => d.online).length;
  return (
    <section>
      <h1>Fleet</h1>
      {error && <p className="error">{error}</p>}
      <p className="summary">
        <strong data-testid="devices-online">{online}</strong> of {list.length} devices online (live)
      </p>
      <table data-testid="fleet">
        <thead>
          <tr>
            <th>Device</th>
            <th>Site</th>
            <th>State</th>
            <th>Last seen</th>
            <th>Agent</th>
            <th>Model</th>
            <th className="num">Frames/s</th>
            <th className="num">p95 ms</th>
            <th className="num">Outbox</th>
            <th>Storage reset</th>
          </tr>
        </thead>
        <tbody>
          {list.map((d) => {
            const hb = (d.lastHeartbeat ?? {}) as Heartbeat;
            return (
              <tr key={d.id} data-device={d.id}>
                <td>
                  {d.id} <span className="muted">{d.kind}</span>
                </td>
                <td>{d.site ?? '–'}</td>
                <td>
                  <span className={d.online ? 'pill ok' : 'pill off'}>{d.online ? 'online' : 'offline'}</span>
                </td>
                <td title={d.lastSeenAt ?? ''}>{ago(d.lastSeenAt)}</td>
                <td>{d.agentVersion ?? '–'}</td>
                <td>{hb.activeModelVersion ?? d.modelVersion ?? '–'}</td>
                <td className="num">{hb.framesPerS?.toFixed(1) ?? '–'}</td>
                <td className="num">{hb.p95LatencyMs?.toFixed(0) ?? '–'}</td>
                <td className="num">{hb.outboxDepth ?? '–'}</td>
                <td title={d.epochChangedAt ?? ''}>{d.epochChangedAt ? ago(d.epochChangedAt) : 'never'}</td>
              </tr>
            );
          })}
          {list.length === 0 && (
            <tr>
              <td colSpan={10} className="empty">
                No device has connected yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}
