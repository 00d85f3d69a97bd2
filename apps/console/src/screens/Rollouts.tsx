import { useCallback, useEffect, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { useHubEvent } from '../events';
import { ago } from '../format';
import { RolloutCreate } from './RolloutCreate';
import { StageBar } from './RolloutStages';

type Rollout = components['schemas']['RolloutDto'];

/** Rollouts (operator): every rollout with its stages, live; create one. */
export default function RolloutsScreen() {
  const [rollouts, setRollouts] = useState<Rollout[]>();
  const [error, setError] = useState<string>();
  const [creating, setCreating] = useState(false);
  const [, navigate] = useLocation();

  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/rollouts', { params: { query: { limit: 50 } } });
    if (data) {
      setRollouts(data);
      setError(undefined);
    } else setError(errorText(err, response.status));
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  useHubEvent('rollout', () => void load(), load);

  return (
    <section>
      <h1>Rollouts</h1>
      <div className="toolbar">
        <button type="button" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          {creating ? 'Close' : 'New rollout'}
        </button>
      </div>
      {creating && <RolloutCreate onCreated={(r) => navigate(`/rollouts/${r.id}`)} />}
      {error && <p className="error">{error}</p>}
      {rollouts && (
        <table data-testid="rollouts">
          <thead>
            <tr>
              <th>Rollout</th>
              <th>Version</th>
              <th>State</th>
              <th>Stages</th>
              <th className="num">Active / devices</th>
              <th>Started</th>
            </tr>
          </thead>
          <tbody>
            {rollouts.map((r) => {
              const devices = Object.values(r.counts).reduce((a, b) => a + b, 0);
              return (
                <tr key={r.id} data-rollout-id={r.id}>
                  <td>
                    <Link href={`/rollouts/${r.id}`}>{r.id}</Link>
                  </td>
                  <td>{r.modelVersion}</td>
                  <td>
                    <span className={`pill state-${r.state}`}>{r.state.replace('_', ' ')}</span>
                    {r.haltReason && <span className="muted"> {r.haltReason}</span>}
                  </td>
                  <td>
                    <StageBar stages={r.stages} />
                  </td>
                  <td className="num">
                    {r.counts.active} / {devices}
                  </td>
                  <td title={r.createdAt}>
                    {ago(r.createdAt)} <span className="muted">by {r.createdBy}</span>
                  </td>
                </tr>
              );
            })}
            {rollouts.length === 0 && (
              <tr>
                <td colSpan={6} className="empty">
                  No rollouts yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}
