import { useCallback, useEffect, useState } from 'react';
import { Link, useParams } from 'wouter';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { ConfirmButton } from '../components/ConfirmButton';
import { useHubEvent } from '../events';
import { ago } from '../format';
import { StageBar, StageTable } from './RolloutStages';

type Rollout = components['schemas']['RolloutDto'];
type Device = components['schemas']['RolloutDeviceDto'];
type Action = 'pause' | 'resume' | 'abort' | 'rollback';

/** Which actions a rollout in a state allows (as the hub's RolloutsService checks them). */
const ALLOWED: Record<Action, Rollout['state'][]> = {
  pause: ['running'],
  resume: ['paused'],
  abort: ['running', 'paused', 'halted'],
  rollback: ['running', 'paused', 'halted', 'completed', 'aborted'],
};
const ACTIONS: Array<{ action: Action; label: string; danger: boolean; explain: string }> = [
  { action: 'pause', label: 'Pause', danger: false, explain: 'No further devices are offered the version and no stage is promoted until you resume. Devices keep what they run.' },
  { action: 'resume', label: 'Resume', danger: false, explain: 'Delivery and stage promotion continue where they stopped.' },
  { action: 'abort', label: 'Abort', danger: true, explain: 'Later stages never get the version; candidates still downloading or shadowing are cancelled. Devices that activated it keep it (roll back to undo that).' },
  { action: 'rollback', label: 'Roll back', danger: true, explain: 'Every device of this rollout returns to the version it ran before; candidates are cancelled.' },
];

/** One rollout, live: per-stage and per-device state; pause, resume, abort, roll back. */
export default function RolloutDetailScreen() {
  const { id } = useParams<{ id: string }>();
  const [rollout, setRollout] = useState<Rollout>();
  const [error, setError] = useState<string>();

  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/rollouts/{id}', { params: { path: { id } } });
    if (data) {
      setRollout(data);
      setError(undefined);
    } else setError(errorText(err, response.status));
  }, [id]);
  useEffect(() => {
    void load();
  }, [load]);
  useHubEvent('rollout', (e) => e.id === id && void load(), load);

  const act = async (action: Action): Promise<string | undefined> => {
    const { data, error: err, response } = await api.POST(`/rollouts/{id}/${action}`, { params: { path: { id } } });
    if (!data) return errorText(err, response.status);
    setRollout(data);
  };

  return (
    <section>
      <p>
        <Link href="/rollouts">← Rollouts</Link>
      </p>
      <h1>Rollout {id}</h1>
      {error && <p className="error">{error}</p>}
      {rollout && (
        <>
          <p className="summary">
            <strong>{rollout.modelVersion}</strong> to {targetText(rollout.target)} —{' '}
            <span className={`pill state-${rollout.state}`} data-testid="rollout-state">
              {rollout.state.replace('_', ' ')}
            </span>
            {rollout.haltReason && <span className="error"> halted: {rollout.haltReason}</span>} <StageBar stages={rollout.stages} />{' '}
            <span className="muted">
              started {ago(rollout.createdAt)} by {rollout.createdBy}
              {rollout.finishedAt && `, finished ${ago(rollout.finishedAt)}`} · live
            </span>
          </p>
          <div className="toolbar">
            {ACTIONS.filter((a) => ALLOWED[a.action].includes(rollout.state)).map((a) => (
              <ConfirmButton key={a.action} label={a.label} title={`${a.label} rollout ${rollout.id}?`} danger={a.danger} onConfirm={() => act(a.action)}>
                <p>{a.explain}</p>
              </ConfirmButton>
            ))}
          </div>
          {rollout.policy && <p className="muted">Policy: {policyText(rollout.policy)}</p>}
          <h2>Stages</h2>
          <StageTable stages={rollout.stages} />
          <h2>Devices</h2>
          <DeviceTable devices={rollout.devices ?? []} />
        </>
      )}
    </section>
  );
}

function targetText(t: Rollout['target']): string {
  const what = t.all ? 'all devices' : t.sites ? `sites ${t.sites.join(', ')}` : `${t.deviceIds?.length ?? 0} devices`;
  return t.percent !== undefined ? `${t.percent}% of ${what}` : what;
}

function policyText(p: NonNullable<Rollout['policy']>): string {
  const pct = (x: number | undefined) => (x === undefined ? undefined : `${Math.round(x * 100)}%`);
  const parts = [
    p.shadowFrames !== undefined && `shadow ${p.shadowFrames} frames`,
    p.shadowGate?.minAgreement !== undefined && `agreement ≥ ${pct(p.shadowGate.minAgreement)}`,
    p.shadowGate?.maxCategoryShift !== undefined && `category shift ≤ ${pct(p.shadowGate.maxCategoryShift)}`,
    p.shadowGate?.minCandidateConfidence !== undefined && `candidate confidence ≥ ${pct(p.shadowGate.minCandidateConfidence)}`,
    p.health && `health over ${p.health.frames} frames`,
    p.health?.maxLatencyRatio !== undefined && `latency ≤ ×${p.health.maxLatencyRatio}`,
    p.health?.maxConfidenceDrop !== undefined && `confidence drop ≤ ${pct(p.health.maxConfidenceDrop)}`,
  ].filter(Boolean);
  return parts.join(', ') || 'device defaults';
}

function DeviceTable({ devices }: { devices: Device[] }) {
  return (
    <table data-testid="rollout-devices">
      <thead>
        <tr>
          <th>Device</th>
          <th className="num">Stage</th>
          <th>State</th>
          <th>Reason</th>
          <th>Active / previous</th>
          <th>Shadow</th>
          <th>Health</th>
          <th>Last report</th>
        </tr>
      </thead>
      <tbody>
        {devices.map((d) => (
          <tr key={d.deviceId} data-device-id={d.deviceId} data-state={d.state}>
            <td>
              <code>{d.deviceId}</code>
            </td>
            <td className="num">{d.stage + 1}</td>
            <td>
              <span className={`chip device-${d.state}`}>{d.state.replace('_', ' ')}</span>
            </td>
            <td title={d.detail ?? undefined}>{d.reason ?? ''}</td>
            <td>
              {d.activeVersion ?? '—'} <span className="muted">/ {d.previousVersion ?? '—'}</span>
            </td>
            <td>{d.shadow ? `${d.shadow.frames} frames, ${Math.round(d.shadow.agreement * 100)}% agree, conf ${d.shadow.activeMeanConfidence.toFixed(2)} → ${d.shadow.candidateMeanConfidence.toFixed(2)}` : ''}</td>
            <td>{d.health ? `p95 ${Math.round(d.health.p95LatencyMs)} ms (was ${Math.round(d.health.baseline.p95LatencyMs)}), conf ${d.health.meanConfidence.toFixed(2)}` : ''}</td>
            <td title={d.statusAt ?? undefined}>{ago(d.statusAt ?? d.offeredAt)}</td>
          </tr>
        ))}
        {devices.length === 0 && (
          <tr>
            <td colSpan={8} className="empty">
              No devices.
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}
