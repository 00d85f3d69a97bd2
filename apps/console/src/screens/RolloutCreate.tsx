import { useEffect, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { api, errorText } from '../api/client';
import type { components, operations } from '../api/openapi';

type Rollout = components['schemas']['RolloutDto'];
type Body = operations['RolloutsController_create']['requestBody']['content']['application/json'];
type Model = components['schemas']['ModelVersionSummaryDoc'];

interface StageRow {
  percent: string;
  minSoakSeconds: string;
  successPercent: string;
  maxFailurePercent: string;
  minDevices: string;
}
const STAGE_DEFAULT: StageRow = { percent: '', minSoakSeconds: '60', successPercent: '100', maxFailurePercent: '0', minDevices: '1' };
/** A canary, then everyone. */
const STAGES_DEFAULT: StageRow[] = [
  { ...STAGE_DEFAULT, percent: '10' },
  { ...STAGE_DEFAULT, percent: '100' },
];

/**
 * The policy fields as typed; '' = not set (the hub's defaults: every rollout has a shadow gate
 * and a health watch). Turning either off takes a written reason (the hub audits it).
 */
const POLICY_DEFAULT = {
  shadowFrames: '',
  minAgreement: '',
  maxCategoryShift: '',
  minCandidateConfidence: '',
  maxPredictedChange: '',
  maxPairChange: '',
  healthFrames: '',
  maxLatencyRatio: '',
  maxConfidenceDrop: '',
  gateOff: false,
  healthOff: false,
  overrideReason: '',
  onHalt: 'rollback' as 'rollback' | 'hold',
};
type PolicyFields = typeof POLICY_DEFAULT;
type NumberField = Exclude<keyof PolicyFields, 'gateOff' | 'healthOff' | 'overrideReason' | 'onHalt'>;

const num = (s: string): number | undefined => (s.trim() === '' ? undefined : Number(s));
/** Shares are typed as percentages and sent as 0..1. */
const share = (s: string): number | undefined => (s.trim() === '' ? undefined : Number(s) / 100);
const defined = <T extends object>(o: T): T | undefined => (Object.values(o).some((v) => v !== undefined) ? (Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T) : undefined);
const list = (s: string): string[] =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

export function bodyOf(model: string, target: { kind: 'all' | 'sites' | 'deviceIds'; values: string; percent: string }, stages: StageRow[], p: PolicyFields): Body {
  const percent = num(target.percent);
  const shadowGate = p.gateOff
    ? (false as const)
    : defined({
        minAgreement: share(p.minAgreement),
        maxCategoryShift: share(p.maxCategoryShift),
        minCandidateConfidence: share(p.minCandidateConfidence),
        maxPredictedChange: share(p.maxPredictedChange),
        maxPairChange: share(p.maxPairChange),
      });
  const health = p.healthOff ? (false as const) : defined({ frames: num(p.healthFrames), maxLatencyRatio: num(p.maxLatencyRatio), maxConfidenceDrop: share(p.maxConfidenceDrop) });
  const policy = defined({
    shadowFrames: num(p.shadowFrames),
    shadowGate,
    health,
    onHalt: p.onHalt === 'hold' ? ('hold' as const) : undefined,
    overrideReason: (p.gateOff || p.healthOff) && p.overrideReason.trim() ? p.overrideReason.trim() : undefined,
  });
  return {
    modelVersion: model,
    target: {
      ...(target.kind === 'all' ? { all: true as const } : { [target.kind]: list(target.values) }),
      ...(percent !== undefined && percent < 100 ? { percent } : {}),
    },
    stages: stages.map((s) => ({
      percent: Number(s.percent),
      minSoakSeconds: Number(s.minSoakSeconds || 0),
      successThreshold: Number(s.successPercent || 100) / 100,
      abort: { maxFailurePercent: Number(s.maxFailurePercent || 0), minDevices: Number(s.minDevices || 1) },
    })),
    ...(policy ? { policy } : {}),
  };
}

/** Create a rollout: a releasable version, a target, stages, the shadow gate and health policy. */
export function RolloutCreate({ onCreated }: { onCreated: (r: Rollout) => void }) {
  const [models, setModels] = useState<Model[]>();
  const [model, setModel] = useState('');
  const [target, setTarget] = useState<{ kind: 'all' | 'sites' | 'deviceIds'; values: string; percent: string }>({ kind: 'all', values: '', percent: '' });
  const [stages, setStages] = useState<StageRow[]>(STAGES_DEFAULT);
  const [policy, setPolicy] = useState<PolicyFields>(POLICY_DEFAULT);
  const [error, setError] = useState<{ text: string; rolloutId?: string }>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void (async () => {
      const { data, error: err, response } = await api.GET('/models', { params: { query: { limit: 100 } } });
      if (!data) return setError({ text: errorText(err, response.status) });
      const releasable = data.filter((m) => m.releasable === true);
      setModels(releasable);
      setModel((m) => m || (releasable[0]?.version ?? ''));
    })();
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const { data, error: err, response } = await api.POST('/rollouts', { body: bodyOf(model, target, stages, policy) });
    setBusy(false);
    if (data) {
      setError(undefined);
      onCreated(data);
      return;
    }
    const rolloutId = err && typeof err === 'object' && 'rolloutId' in err ? String((err as { rolloutId: unknown }).rolloutId) : undefined;
    setError({ text: errorText(err, response.status), rolloutId: response.status === 409 ? rolloutId : undefined });
  };

  const setStage = (i: number, k: keyof StageRow, v: string) => setStages(stages.map((s, j) => (j === i ? { ...s, [k]: v } : s)));
  const policyInput = (k: NumberField, label: string, hint: string, disabled = false) => (
    <label>
      {label}
      <input name={k} type="number" step="any" min="0" value={policy[k]} placeholder={hint} disabled={disabled} onChange={(e) => setPolicy({ ...policy, [k]: e.target.value })} />
    </label>
  );
  const offSwitch = (k: 'gateOff' | 'healthOff', label: string) => (
    <label className="inline">
      <input name={k} type="checkbox" checked={policy[k]} onChange={(e) => setPolicy({ ...policy, [k]: e.target.checked })} /> {label}
    </label>
  );

  return (
    <form className="rollout-create" onSubmit={submit} aria-label="Create rollout">
      <h2>New rollout</h2>
      <div className="filters">
        <label>
          model version (releasable)
          <select name="modelVersion" value={model} required onChange={(e) => setModel(e.target.value)}>
            {models?.length === 0 && <option value="">no releasable version</option>}
            {models?.map((m) => (
              <option key={m.version} value={m.version}>
                {m.version} — {m.categorySet}
                {m.accuracy !== null ? `, ${(m.accuracy * 100).toFixed(1)}%` : ''}
              </option>
            ))}
          </select>
        </label>
        <label>
          target
          <select name="targetKind" value={target.kind} onChange={(e) => setTarget({ ...target, kind: e.target.value as typeof target.kind })}>
            <option value="all">all devices</option>
            <option value="sites">sites</option>
            <option value="deviceIds">device ids</option>
          </select>
        </label>
        {target.kind !== 'all' && (
          <label>
            {target.kind === 'sites' ? 'sites' : 'device ids'} (comma-separated)
            <input name="targetValues" value={target.values} required onChange={(e) => setTarget({ ...target, values: e.target.value })} />
          </label>
        )}
        <label>
          share of the selection %
          <input name="targetPercent" type="number" min="1" max="100" value={target.percent} placeholder="100" onChange={(e) => setTarget({ ...target, percent: e.target.value })} />
        </label>
      </div>
      <table className="stages">
        <thead>
          <tr>
            <th>Stage</th>
            <th>Cumulative %</th>
            <th>Min soak (s)</th>
            <th>Promote at % active</th>
            <th>Abort above % failed</th>
            <th>… after devices</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {stages.map((s, i) => (
            <tr key={i}>
              <td>{i + 1}</td>
              {(['percent', 'minSoakSeconds', 'successPercent', 'maxFailurePercent', 'minDevices'] as const).map((k) => (
                <td key={k}>
                  <input aria-label={`stage ${i + 1} ${k}`} type="number" step="any" min="0" required={k === 'percent'} value={s[k]} onChange={(e) => setStage(i, k, e.target.value)} />
                </td>
              ))}
              <td>
                {stages.length > 1 && (
                  <button type="button" onClick={() => setStages(stages.filter((_, j) => j !== i))}>
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" onClick={() => setStages([...stages.slice(0, -1), { ...STAGE_DEFAULT, percent: '' }, stages[stages.length - 1]!])} disabled={stages.length >= 20}>
        Add stage
      </button>
      <fieldset>
        <legend>Shadow gate (on by default; empty fields take the hub&apos;s defaults)</legend>
        <p className="muted">
          Each device shadows the head before activating it and refuses it past its own limits; the hub pools the devices&apos; shadow runs into the predicted inventory change and halts the stage
          past the change limits.
        </p>
        <div className="filters">
          {policyInput('shadowFrames', 'shadow frames', 'device default')}
          {policyInput('maxPredictedChange', 'max predicted change %', 'default', policy.gateOff)}
          {policyInput('maxPairChange', 'max change of one pair %', 'default', policy.gateOff)}
          {policyInput('minAgreement', 'device: min agreement %', 'default', policy.gateOff)}
          {policyInput('maxCategoryShift', 'device: max category shift %', 'default', policy.gateOff)}
          {policyInput('minCandidateConfidence', 'device: min candidate confidence %', 'none', policy.gateOff)}
          {offSwitch('gateOff', 'turn the shadow gate off')}
        </div>
      </fieldset>
      <fieldset>
        <legend>Health watch (on by default: after activation the device rolls back by itself past these)</legend>
        <div className="filters">
          {policyInput('healthFrames', 'frames', 'default', policy.healthOff)}
          {policyInput('maxLatencyRatio', 'max latency ratio', 'default', policy.healthOff)}
          {policyInput('maxConfidenceDrop', 'max confidence drop %', 'default', policy.healthOff)}
          {offSwitch('healthOff', 'turn the health watch off')}
        </div>
      </fieldset>
      <fieldset>
        <legend>On a halt</legend>
        <div className="filters">
          <label>
            devices already running the version
            <select name="onHalt" value={policy.onHalt} onChange={(e) => setPolicy({ ...policy, onHalt: e.target.value as PolicyFields['onHalt'] })}>
              <option value="rollback">go back to their previous version</option>
              <option value="hold">keep it</option>
            </select>
          </label>
          {(policy.gateOff || policy.healthOff) && (
            <label>
              why off (required, audited)
              <input name="overrideReason" required minLength={3} maxLength={500} value={policy.overrideReason} onChange={(e) => setPolicy({ ...policy, overrideReason: e.target.value })} />
            </label>
          )}
        </div>
      </fieldset>
      <div className="toolbar">
        <button type="submit" disabled={busy || !model}>
          Start rollout
        </button>
        {error && (
          <span className="error" role="alert">
            {error.text}
            {error.rolloutId && (
              <>
                {' '}
                — <Link href={`/rollouts/${error.rolloutId}`}>open {error.rolloutId}</Link>
              </>
            )}
          </span>
        )}
      </div>
    </form>
  );
}
