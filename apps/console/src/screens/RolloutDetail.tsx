import { useCallback, useEffect, useState } from 'react';
import { Link, useParams } from 'wouter';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { ConfirmButton } from '../components/ConfirmButton';
import { useHubEvent } from '../events';
import { ago } from '../format';
import { PredictedChangeChart } from './RolloutChange';
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
            <StageBar stages={rollout.stages} />{' '}
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
          {rollout.haltReason && <HaltNotice rollout={rollout} />}
          {rollout.policy && <PolicyNotice policy={rollout.policy} />}
          <h2>Predicted inventory change</h2>
          <p className="muted">
            What the head would change in the inventory, from the shadow runs of the devices offered so far ({rollout.currentStage === 0 ? 'stage 1' : `stages 1–${rollout.currentStage + 1}`}): the share of
            frames whose category would change, per category pair. {rollout.state === 'running' && 'The stage halts when it passes the limits.'}
          </p>
          {rollout.predictedChange && rollout.policy && <PredictedChangeChart change={rollout.predictedChange} gate={rollout.policy.shadowGate} />}
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

type Policy = NonNullable<Rollout['policy']>;
const pct = (x: number | undefined) => (x === undefined ? undefined : `${Math.round(x * 1000) / 10}%`);

function gateText(g: Policy['shadowGate']): string {
  if (g === false) return 'off';
  return (
    [
      g.maxPredictedChange !== undefined && `predicted change ≤ ${pct(g.maxPredictedChange)}`,
      g.maxPairChange !== undefined && `one pair ≤ ${pct(g.maxPairChange)}`,
      g.minAgreement !== undefined && `device agreement ≥ ${pct(g.minAgreement)}`,
      g.maxCategoryShift !== undefined && `device category shift ≤ ${pct(g.maxCategoryShift)}`,
      g.minCandidateConfidence !== undefined && `candidate confidence ≥ ${pct(g.minCandidateConfidence)}`,
    ]
      .filter(Boolean)
      .join(', ') || 'no limits'
  );
}

function healthText(h: Policy['health']): string {
  if (h === false) return 'off';
  return [`over ${h.frames} frames`, h.maxLatencyRatio !== undefined && `latency ≤ ×${h.maxLatencyRatio}`, h.maxConfidenceDrop !== undefined && `confidence drop ≤ ${pct(h.maxConfidenceDrop)}`]
    .filter(Boolean)
    .join(', ');
}

/** The policy as applied; a gate or watch turned off is shown with the operator's reason. */
function PolicyNotice({ policy: p }: { policy: Policy }) {
  const off = p.shadowGate === false || p.health === false;
  return (
    <div className="policy" data-testid="rollout-policy">
      <p className={off ? 'warning' : 'muted'}>
        Shadow gate: <span data-testid="policy-gate">{gateText(p.shadowGate)}</span>
        {p.shadowFrames !== undefined && ` (${p.shadowFrames} frames)`} · Health watch: <span data-testid="policy-health">{healthText(p.health)}</span> · On a halt:{' '}
        {p.onHalt === 'rollback' ? 'devices go back to their previous version' : 'devices keep the version'}
      </p>
      {off && p.overrideReason && (
        <p className="warning" data-testid="policy-override">
          Turned off by the operator: “{p.overrideReason}”
        </p>
      )}
    </div>
  );
}

/** Why the rollout stopped, and what became of the devices that had activated the version. */
function HaltNotice({ rollout }: { rollout: Rollout }) {
  const devices = rollout.devices ?? [];
  const rolledBack = devices.filter((d) => d.state === 'rolled_back' && d.reason === 'operator').length;
  const cancelled = devices.filter((d) => d.state === 'rejected' && d.reason === 'operator').length;
  const still = devices.filter((d) => d.activeVersion === rollout.modelVersion).length;
  return (
    <div className="halt" role="status" data-testid="rollout-halt">
      <p className="error">Halted: {rollout.haltReason}</p>
      {rollout.haltAction === 'rollback' && (
        <p>
          <strong data-testid="halt-rolled-back">{rolledBack} devices rolled back</strong> to their previous version
          {cancelled > 0 && `, ${cancelled} candidates cancelled`}
          {still > 0 ? <span className="error">; {still} still run it (waiting for them to report)</span> : '; none runs the halted version'}.
        </p>
      )}
      {rollout.haltAction === 'hold' && (
        <p className="muted">
          {still} devices keep the version (policy onHalt: hold); roll the rollout back to undo that.
        </p>
      )}
    </div>
  );
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
