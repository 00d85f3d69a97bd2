import { useCallback, useEffect, useState } from 'react';
import { Link, useLocation, useParams } from 'wouter';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { IfRole } from '../auth';
import { useHubEvent } from '../events';
import { ago } from '../format';
import { ConfusionHeatmap } from './ConfusionHeatmap';
import './models.css';

type Summary = components['schemas']['ModelVersionSummaryDoc'];
/** The gate's per-category judgement (GET /models/:version `gate`; typed here until the client is regenerated). */
interface GateCategory {
  category: string;
  n: number;
  before: number | null;
  after: number;
  worse: number;
  better: number;
  p: number | null;
  status: 'passed' | 'regressed' | 'unverified' | 'new';
}
interface GateRecord {
  reference: string | null;
  categories: GateCategory[];
  regressed: string[];
  unverified: string[];
  overridable: boolean;
  settings: { alpha: number; minEvalRows: number; maxCategoryDrop: number };
}
type Version = Omit<components['schemas']['ModelVersionDoc'], 'gate' | 'override' | 'declared'> & {
  gate?: GateRecord | null;
  override?: { by: string; reason: string; at: string } | null;
  declared?: Record<string, unknown> | null;
};
type Comparison = components['schemas']['ModelComparisonDoc'];

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const signed = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} pt`;
export const modelPath = (version: string) => `/models/${encodeURIComponent(version)}`;

export function GateBadge({ releasable }: { releasable: boolean | null }) {
  if (releasable === null) return <span className="gate pending">not evaluated</span>;
  return <span className={releasable ? 'gate pass' : 'gate fail'}>{releasable ? 'releasable' : 'refused'}</span>;
}

export default function ModelsScreen() {
  const params = useParams<{ version?: string }>();
  const [, navigate] = useLocation();
  const [models, setModels] = useState<Summary[]>([]);
  const [error, setError] = useState<string>();
  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/models', { params: { query: { limit: 100 } } });
    if (data) setModels(data);
    else setError(errorText(err, response.status));
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  // A job that finishes registers a version: show it without a reload.
  useHubEvent('training', (job) => {
    if (job.status === 'done') void load();
  });
  const selected = params.version ? decodeURIComponent(params.version) : models[0]?.version;

  return (
    <section className="models">
      <h1>Models</h1>
      {error && <p className="error">{error}</p>}
      <div className="models-layout">
        <table className="versions" data-testid="model-versions">
          <thead>
            <tr>
              <th>Version</th>
              <th className="num">Accuracy</th>
              <th>Gate</th>
              <th>Registered</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr key={m.version} className={m.version === selected ? 'shown' : ''} onClick={() => navigate(modelPath(m.version))} data-version={m.version}>
                <td>
                  <Link href={modelPath(m.version)}>{m.version}</Link>
                  <div className="muted">
                    {m.source} · {m.headType} · {m.labels.length} categories
                  </div>
                </td>
                <td className="num">{pct(m.accuracy)}</td>
                <td>
                  <GateBadge releasable={m.releasable} />
                </td>
                <td title={m.registeredAt}>{ago(m.registeredAt)}</td>
              </tr>
            ))}
            {models.length === 0 && (
              <tr>
                <td colSpan={4} className="empty">
                  No versions yet: register one with <code>shelf models register</code> or start a training job.
                </td>
              </tr>
            )}
          </tbody>
        </table>
        {selected && <VersionDetail key={selected} version={selected} models={models} onChanged={() => void load()} />}
      </div>
    </section>
  );
}

const p3 = (p: number | null) => (p === null ? '–' : p < 0.001 ? '<0.001' : p.toFixed(3));

/** The gate's verdict per category: rows, before (the reference) and after, discordant pairs and the McNemar p. */
function GateTable({ gate }: { gate: GateRecord }) {
  return (
    <table className="gate-categories" data-testid="gate-categories">
      <caption>
        {gate.reference ? (
          <>
            Against <Link href={modelPath(gate.reference)}>{gate.reference}</Link> on the same evaluation rows (one-sided McNemar, α {gate.settings.alpha}; at least{' '}
            {gate.settings.minEvalRows} rows a category)
          </>
        ) : (
          <>No reference version (the first of its backbone); at least {gate.settings.minEvalRows} rows a category</>
        )}
      </caption>
      <thead>
        <tr>
          <th>Category</th>
          <th>Rows</th>
          <th>Before</th>
          <th>After</th>
          <th>Lost / gained</th>
          <th>p</th>
          <th>Verdict</th>
        </tr>
      </thead>
      <tbody>
        {gate.categories.map((c) => (
          <tr key={c.category} className={c.status} data-category={c.category}>
            <td>{c.category}</td>
            <td className="num">{c.n}</td>
            <td className="num">{pct(c.before)}</td>
            <td className="num">{pct(c.after)}</td>
            <td className="num">{c.before === null ? '–' : `${c.worse} / ${c.better}`}</td>
            <td className="num">{p3(c.p)}</td>
            <td>
              <span className={`verdict ${c.status}`}>{c.status}</span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function VersionDetail({ version, models, onChanged }: { version: string; models: Summary[]; onChanged(): void }) {
  const [v, setV] = useState<Version>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    void api.GET('/models/{version}', { params: { path: { version } } }).then(({ data, error: err, response }) => {
      if (!live) return;
      if (data) setV(data as Version);
      else setError(errorText(err, response.status));
    });
    return () => {
      live = false;
    };
  }, [version]);
  const [reason, setReason] = useState('');
  const [overrideError, setOverrideError] = useState<string>();
  const override = async () => {
    const { data, error: err, response } = await api.POST('/models/{version}/override', { params: { path: { version } }, body: { reason } });
    if (!data) return setOverrideError(errorText(err, response.status));
    setOverrideError(undefined);
    setV(data as Version);
    onChanged();
  };
  if (error) return <p className="error">{error}</p>;
  if (!v) return <p className="loading">Loading {version}…</p>;
  const base = Object.entries(v.lineage.base ?? {});
  return (
    <article className="version" data-testid="model-detail" data-version={v.version}>
      <h2>
        {v.version} <GateBadge releasable={v.releasable} />
      </h2>
      <p className="gate-reason" data-testid="gate-reason">
        <strong>Gate:</strong> {v.gateReason ?? 'no verdict recorded'}
      </p>
      {v.override && (
        <p className="gate-override" data-testid="gate-override">
          <strong>Released by override</strong> of {v.override.by} {ago(v.override.at)}: “{v.override.reason}”
        </p>
      )}
      {v.gate && v.gate.categories.length > 0 && <GateTable gate={v.gate} />}
      {v.releasable === false && v.gate?.overridable && (
        <IfRole role="operator">
          <form
            className="override"
            aria-label="release with override"
            onSubmit={(e) => {
              e.preventDefault();
              void override();
            }}
          >
            <label>
              Release although {v.gate.unverified.join(', ')} {v.gate.unverified.length === 1 ? 'has' : 'have'} fewer than {v.gate.settings.minEvalRows} evaluation rows — why? (audited)
              <textarea value={reason} minLength={10} required onChange={(e) => setReason(e.target.value)} />
            </label>
            <button type="submit" disabled={reason.trim().length < 10}>
              Release with override
            </button>
            {overrideError && <p className="error">{overrideError}</p>}
          </form>
        </IfRole>
      )}
      <div className="grid2">
        <section>
          <h3>Lineage</h3>
          <dl className="facts">
            <dt>Parent</dt>
            <dd>{v.lineage.parent ? <Link href={modelPath(v.lineage.parent)}>{v.lineage.parent}</Link> : 'none (a first version)'}</dd>
            <dt>Labelled samples</dt>
            <dd data-testid="lineage-samples">{v.lineage.sampleIds.length}</dd>
            {v.lineage.jobId && (
              <>
                <dt>Training job</dt>
                <dd>
                  <Link href="/training">#{v.lineage.jobId}</Link>
                </dd>
              </>
            )}
            {base.map(([k, value]) => (
              <FactRow key={k} name={`base ${k}`} value={value} />
            ))}
            <dt>Backbone</dt>
            <dd>
              {v.backbone.id} <span className="muted">{v.backbone.checksum.slice(0, 12)}</span>
            </dd>
            <dt>Artifact</dt>
            <dd>
              {(v.artifact.bytes / 1024).toFixed(1)} KB <span className="muted">sha256 {v.artifact.sha256.slice(0, 12)}</span>
            </dd>
            <dt>Registered</dt>
            <dd>
              {ago(v.registeredAt)} by {v.registeredBy ?? v.source}
            </dd>
          </dl>
        </section>
        <section>
          <h3>Metrics</h3>
          {v.metrics ? (
            <>
              <p>
                Accuracy <strong data-testid="model-accuracy">{pct(v.metrics.accuracy)}</strong> on {v.metrics.rows} evaluation rows of the hub{' '}
                <span className="muted">
                  (majority baseline {pct(v.metrics.baseline.majority)}, chance {pct(v.metrics.baseline.chance)})
                </span>
              </p>
              <ul className="per-category">
                {v.metrics.labels.map((l) => {
                  const c = v.metrics?.perCategory[l];
                  return (
                    <li key={l}>
                      <span className="name">{l}</span>
                      <span className="bar">
                        <span style={{ width: pct(c?.accuracy ?? 0) }} />
                      </span>
                      <span className="num">{pct(c?.accuracy)}</span>
                      <span className="muted">{c?.rows ?? 0} rows</span>
                    </li>
                  );
                })}
              </ul>
            </>
          ) : (
            <p className="empty">Not evaluated.</p>
          )}
        </section>
      </div>
      {v.metrics && v.metrics.confusion.length > 0 && (
        <>
          <h3>Confusion matrix</h3>
          <ConfusionHeatmap labels={v.metrics.labels} confusion={v.metrics.confusion} />
        </>
      )}
      <Compare b={v} models={models} />
    </article>
  );
}

function FactRow({ name, value }: { name: string; value: unknown }) {
  return (
    <>
      <dt>{name}</dt>
      <dd>{typeof value === 'object' && value !== null ? <code>{JSON.stringify(value)}</code> : String(value)}</dd>
    </>
  );
}

function Compare({ b, models }: { b: Version; models: Summary[] }) {
  const comparable = models.filter((m) => m.categorySet === b.categorySet && m.version !== b.version);
  const [picked, setA] = useState<string>();
  // Default: the parent when it is comparable, else the newest comparable version (the list may arrive after this mounts).
  const a = picked ?? (b.lineage.parent && comparable.some((m) => m.version === b.lineage.parent) ? b.lineage.parent : (comparable[0]?.version ?? ''));
  const [cmp, setCmp] = useState<Comparison>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    if (!a) return;
    let live = true;
    void api.GET('/models/compare', { params: { query: { a, b: b.version } } }).then(({ data, error: err, response }) => {
      if (!live) return;
      setCmp(data);
      setError(data ? undefined : errorText(err, response.status));
    });
    return () => {
      live = false;
    };
  }, [a, b.version]);
  if (comparable.length === 0) return null;
  return (
    <section className="compare" data-testid="model-compare">
      <h3>
        Compare with{' '}
        <select aria-label="compare with" value={a} onChange={(e) => setA(e.target.value)}>
          {comparable.map((m) => (
            <option key={m.version} value={m.version}>
              {m.version}
            </option>
          ))}
        </select>
      </h3>
      {error && <p className="error">{error}</p>}
      {cmp && (
        <table className="deltas">
          <thead>
            <tr>
              <th>Category</th>
              <th className="num">{cmp.a}</th>
              <th className="num">{cmp.b}</th>
              <th>Change</th>
            </tr>
          </thead>
          <tbody>
            <tr className="overall">
              <td>overall ({cmp.evaluationRows} rows)</td>
              <td className="num">{pct(cmp.overall.a)}</td>
              <td className="num">{pct(cmp.overall.b)}</td>
              <td>
                <Delta d={cmp.overall.delta} />
              </td>
            </tr>
            {cmp.perCategory.map((c) => (
              <tr key={c.category}>
                <td>
                  {c.category} <span className="muted">{c.rows} rows</span>
                </td>
                <td className="num">{pct(c.a)}</td>
                <td className="num">{pct(c.b)}</td>
                <td>
                  <Delta d={c.delta} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** A signed bar: right and green for a gain, left and red for a loss (full width = 50 points). */
function Delta({ d }: { d: number }) {
  const w = `${Math.min(50, Math.abs(d) * 100)}%`;
  return (
    <span className="delta">
      <span className="track">
        <span className={d >= 0 ? 'gain' : 'loss'} style={d >= 0 ? { left: '50%', width: w } : { right: '50%', width: w }} />
      </span>
      <span className="num">{signed(d)}</span>
    </span>
  );
}
