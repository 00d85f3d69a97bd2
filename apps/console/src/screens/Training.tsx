import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { api, errorText } from '../api/client';
import type { components, paths } from '../api/openapi';
import { IfRole } from '../auth';
import { useHubEvent } from '../events';
import { ago } from '../format';
import './training.css';

type Job = components['schemas']['TrainingJobDto'];
type ModelSummary = components['schemas']['ModelVersionSummaryDoc'];
type JobRequest = paths['/training-jobs']['post']['requestBody']['content']['application/json'];
type HeadType = NonNullable<NonNullable<JobRequest['head']>['type']>;

/** Every phase in its order (a Record, so a phase the hub adds is a compile error here until placed). */
const PHASE_ORDER: Record<Job['phase'], number> = { queued: 0, bottlenecks: 1, augmenting: 2, training: 3, evaluating: 4, registering: 5, done: 6 };
const PHASES = (Object.keys(PHASE_ORDER) as Array<Job['phase']>).sort((a, b) => PHASE_ORDER[a] - PHASE_ORDER[b]);
const ACTIVE = new Set<Job['status']>(['queued', 'running']);
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);

/** Newest first, one entry per job id. */
function upsert(jobs: Job[], job: Job): Job[] {
  const rest = jobs.filter((j) => j.id !== job.id);
  return [job, ...rest].sort((a, b) => b.id - a.id);
}

export default function TrainingScreen() {
  const [jobs, setJobs] = useState<Job[]>([]);
  const [watching, setWatching] = useState<number>();
  const [error, setError] = useState<string>();

  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/training-jobs', { params: { query: { limit: 25 } } });
    if (data) {
      setJobs(data);
      setError(undefined);
    } else setError(errorText(err, response.status));
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  // Live: the hub pushes each job's status, phase and progress as the worker writes them.
  useHubEvent('training', (job) => setJobs((list) => upsert(list, job)), load);

  const shown = jobs.find((j) => j.id === watching) ?? jobs.find((j) => ACTIVE.has(j.status)) ?? jobs[0];

  const act = async (job: Job, action: 'cancel' | 'retry') => {
    const path = { params: { path: { id: String(job.id) } } };
    const r = action === 'cancel' ? await api.POST('/training-jobs/{id}/cancel', path) : await api.POST('/training-jobs/{id}/retry', path);
    if (!r.data) return setError(errorText(r.error, r.response.status));
    setJobs((list) => upsert(list, r.data));
    if (action === 'retry') setWatching(r.data.id);
  };

  return (
    <section className="training">
      <h1>Training</h1>
      {error && <p className="error">{error}</p>}
      <div className="grid2">
        <div>
          <IfRole role="operator">
            <StartJob
              onStarted={(job) => {
                setJobs((list) => upsert(list, job));
                setWatching(job.id);
              }}
            />
          </IfRole>
          <h2>Jobs</h2>
          <table className="jobs" data-testid="training-jobs">
            <thead>
              <tr>
                <th>Job</th>
                <th>Status</th>
                <th>Phase</th>
                <th>Started</th>
                <th>Version</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.id} className={j.id === shown?.id ? 'shown' : ''} onClick={() => setWatching(j.id)} data-job-id={j.id}>
                  <td>
                    #{j.id}
                    {j.attempt > 1 && <span className="muted"> (attempt {j.attempt})</span>}
                  </td>
                  <td>
                    <span className={`status ${j.status}`}>{j.status}</span>
                  </td>
                  <td>{j.phase}</td>
                  <td title={j.createdAt}>{ago(j.startedAt ?? j.createdAt)}</td>
                  <td>{j.resultVersion ? <Link href={`/models/${encodeURIComponent(j.resultVersion)}`}>{j.resultVersion}</Link> : ''}</td>
                </tr>
              ))}
              {jobs.length === 0 && (
                <tr>
                  <td colSpan={5} className="empty">
                    No training jobs yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        {shown && <JobProgress job={shown} onAction={(a) => void act(shown, a)} />}
      </div>
    </section>
  );
}

/** The worker's check of devices' embeddings against their thumbnails (the job's result). */
interface EmbeddingCheck {
  checked: number;
  leftOut: number;
  messages: string[];
  devices: Array<{ device: string; checked: number; mismatched: number }>;
}

function JobProgress({ job, onAction }: { job: Job; onAction(a: 'cancel' | 'retry'): void }) {
  const p = job.progress;
  const phaseIndex = PHASES.indexOf(job.phase);
  const share = job.status === 'done' ? 1 : p.steps ? (p.step ?? 0) / p.steps : p.epochs ? Math.min(1, (p.epoch ?? 0) / p.epochs) : 0;
  const result = job.result as { accuracy?: number; releasable?: boolean; gateReason?: string; embeddingCheck?: EmbeddingCheck } | null;
  const check = p as typeof p & { embeddingCheckDone?: number; embeddingCheckTotal?: number };
  return (
    <div className="job-progress" data-testid="job-progress" data-status={job.status}>
      <h2>
        Job #{job.id} <span className={`status ${job.status}`} data-testid="job-status">{job.status}</span>
      </h2>
      <ol className="phases" aria-label="phases">
        {PHASES.map((ph, i) => (
          <li key={ph} className={i < phaseIndex || job.phase === 'done' ? 'past' : i === phaseIndex ? 'now' : ''}>
            {ph}
          </li>
        ))}
      </ol>
      <div className="progressbar" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(share * 100)}>
        <span style={{ width: `${Math.round(share * 100)}%` }} />
      </div>
      <dl className="facts">
        <dt>Epoch</dt>
        <dd data-testid="job-epoch">{p.epoch !== undefined ? `${Math.min(p.epoch, p.epochs ?? p.epoch).toFixed(p.epoch % 1 ? 1 : 0)} of ${p.epochs ?? '?'}` : '–'}</dd>
        <dt>Validation accuracy</dt>
        <dd data-testid="job-val-accuracy">{pct(p.valAccuracy)}</dd>
        {p.augmentTotal !== undefined && (
          <>
            <dt>Thumbnail views</dt>
            <dd>
              {p.augmentDone ?? 0} of {p.augmentTotal}
              {p.augmentedRows !== undefined && ` (${p.augmentedRows} distorted rows)`}
            </dd>
          </>
        )}
        {check.embeddingCheckTotal !== undefined && (
          <>
            <dt>Embeddings checked</dt>
            <dd data-testid="job-embedding-check">
              {check.embeddingCheckDone ?? 0} of {check.embeddingCheckTotal} re-embedded from their thumbnails
              {result?.embeddingCheck && ` · ${result.embeddingCheck.leftOut} left out`}
            </dd>
          </>
        )}
        {result?.embeddingCheck && result.embeddingCheck.messages.length > 0 && (
          <>
            <dt>Devices</dt>
            <dd className="error" data-testid="job-embedding-mismatches">
              <ul>
                {result.embeddingCheck.messages.map((m) => (
                  <li key={m}>{m}</li>
                ))}
              </ul>
            </dd>
          </>
        )}
        <dt>Rows</dt>
        <dd>{p.rows !== undefined ? `${p.rows} (${p.baseRows ?? 0} base + ${p.sampleRows ?? 0} labelled samples)` : '–'}</dd>
        <dt>Base</dt>
        <dd>
          <code>{JSON.stringify((job.spec as { base?: unknown } | null)?.base ?? null)}</code>
        </dd>
        <dt>By</dt>
        <dd>
          {job.createdBy} {ago(job.createdAt)}
        </dd>
        {job.error && (
          <>
            <dt>Error</dt>
            <dd className="error">{job.error}</dd>
          </>
        )}
        {job.resultVersion && (
          <>
            <dt>New version</dt>
            <dd>
              <Link href={`/models/${encodeURIComponent(job.resultVersion)}`} data-testid="job-result-version">
                {job.resultVersion}
              </Link>
              {result?.accuracy !== undefined && ` · accuracy ${pct(result.accuracy)}`}
            </dd>
          </>
        )}
      </dl>
      <IfRole role="operator">
        <div className="toolbar">
          {ACTIVE.has(job.status) && (
            <button onClick={() => onAction('cancel')} disabled={!!job.cancelRequestedAt}>
              {job.cancelRequestedAt ? 'Cancelling…' : 'Cancel job'}
            </button>
          )}
          {(job.status === 'failed' || job.status === 'cancelled') && <button onClick={() => onAction('retry')}>Retry</button>}
        </div>
      </IfRole>
    </div>
  );
}

function StartJob({ onStarted }: { onStarted(job: Job): void }) {
  const [models, setModels] = useState<ModelSummary[]>([]);
  const [form, setForm] = useState({ baseKind: 'version' as 'version' | 'dataset', version: '', dataset: '', samples: 'all labelled' as JobRequest['samples'], augment: false, head: 'softmax' as HeadType, epochs: '', learningRate: '', hidden: '' });
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void api.GET('/models', { params: { query: { limit: 50 } } }).then(({ data }) => {
      if (!data) return;
      setModels(data);
      setForm((f) => (f.version || !data[0] ? f : { ...f, version: data[0].version }));
    });
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const num = (v: string) => (v.trim() === '' ? undefined : Number(v));
    const head: NonNullable<JobRequest['head']> = { type: form.head };
    if (num(form.epochs) !== undefined) head.epochs = num(form.epochs);
    if (num(form.learningRate) !== undefined) head.learningRate = num(form.learningRate);
    if (form.head === 'mlp' && num(form.hidden) !== undefined) head.hidden = num(form.hidden);
    const body: JobRequest = {
      base: form.baseKind === 'version' ? { version: form.version } : { dataset: form.dataset.trim() },
      samples: form.samples,
      head,
      ...(form.augment ? { augmentFromThumbnails: true } : {}),
    };
    setBusy(true);
    const { data, error: err, response } = await api.POST('/training-jobs', { body });
    setBusy(false);
    if (!data) return setError(errorText(err, response.status));
    setError(undefined);
    onStarted(data);
  };

  const ready = form.baseKind === 'version' ? !!form.version : !!form.dataset.trim();
  return (
    <form className="start-job" onSubmit={submit} aria-label="start a training job">
      <h2>Start a job</h2>
      <fieldset>
        <legend>Base</legend>
        <label>
          <input type="radio" name="baseKind" checked={form.baseKind === 'version'} onChange={() => setForm({ ...form, baseKind: 'version' })} /> an earlier version’s training
          set
        </label>
        <select aria-label="base version" value={form.version} disabled={form.baseKind !== 'version'} onChange={(e) => setForm({ ...form, version: e.target.value })}>
          {models.length === 0 && <option value="">no versions registered</option>}
          {models.map((m) => (
            <option key={m.version} value={m.version}>
              {m.version} ({m.labels.length} categories{m.accuracy !== null ? `, ${pct(m.accuracy)}` : ''})
            </option>
          ))}
        </select>
        <label>
          <input type="radio" name="baseKind" checked={form.baseKind === 'dataset'} onChange={() => setForm({ ...form, baseKind: 'dataset' })} /> a dataset folder on the hub
        </label>
        <input aria-label="base dataset" placeholder="/data/grocery/train" value={form.dataset} disabled={form.baseKind !== 'dataset'} onChange={(e) => setForm({ ...form, dataset: e.target.value })} />
      </fieldset>
      <div className="filters">
        <label>
          labelled samples
          <select value={form.samples} onChange={(e) => setForm({ ...form, samples: e.target.value as JobRequest['samples'] })}>
            <option value="all labelled">all labelled (from their embeddings)</option>
            <option value="none">none (base only)</option>
          </select>
        </label>
        <label>
          thumbnails
          <span>
            <input type="checkbox" checked={form.augment} onChange={(e) => setForm({ ...form, augment: e.target.checked })} /> also train on distorted views
          </span>
        </label>
        <label>
          head
          <select value={form.head} onChange={(e) => setForm({ ...form, head: e.target.value as HeadType })}>
            <option value="softmax">softmax</option>
            <option value="mlp">mlp (one hidden layer)</option>
          </select>
        </label>
        {form.head === 'mlp' && (
          <label>
            hidden units
            <input type="number" min={1} max={8192} value={form.hidden} placeholder="default" onChange={(e) => setForm({ ...form, hidden: e.target.value })} />
          </label>
        )}
        <label>
          epochs
          <input type="number" min={0.1} max={1000} step="any" value={form.epochs} placeholder="default" onChange={(e) => setForm({ ...form, epochs: e.target.value })} />
        </label>
        <label>
          learning rate
          <input type="number" min={0} max={10} step="any" value={form.learningRate} placeholder="default" onChange={(e) => setForm({ ...form, learningRate: e.target.value })} />
        </label>
      </div>
      <button type="submit" disabled={!ready || busy}>
        Start training
      </button>
      {error && <p className="error">{error}</p>}
    </form>
  );
}
