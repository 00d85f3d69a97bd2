import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { api, errorText } from '../api/client';
import type { components, paths } from '../api/openapi';
import { IfRole } from '../auth';
import { AuthImage } from '../components/AuthImage';
import { compact } from '../format';
import { categoryKeys, QUEUE_KEYS, typingInField } from './labelling-keys';
import './labelling.css';

type Sample = components['schemas']['SampleDto'];
type Similar = components['schemas']['SimilarSampleDto'];
type Counts = components['schemas']['SampleCountsDto'];
type Category = components['schemas']['CategoryDto'];
type Query = NonNullable<paths['/samples']['get']['parameters']['query']>;
type SampleState = NonNullable<Query['state']>;
type SampleOrder = NonNullable<Query['order']>;
type SampleReason = NonNullable<Query['reason']>;

const STATES: SampleState[] = ['pending', 'labelled', 'skipped'];
const ORDERS: Array<[SampleOrder, string]> = [
  ['margin', 'least margin (most uncertain)'],
  ['entropy', 'highest entropy'],
  ['diverse', 'diverse (farthest apart)'],
  ['newest', 'newest'],
];
const REASONS: SampleReason[] = ['disagreement', 'low_confidence', 'small_margin', 'audit', 'requested'];
const PAGE = 48;

/** What an undo puts back: each sample's state and label before the action. */
type UndoEntry = { what: string; before: Array<{ id: string; state: string; label: string | null }> };

const pct = (x: number) => `${Math.round(x * 100)}%`;

export default function LabellingScreen() {
  const [filters, setFilters] = useState({ state: 'pending' as SampleState, order: 'margin' as SampleOrder, reason: '', category: '', device: '' });
  const [items, setItems] = useState<Sample[]>([]);
  const [selected, setSelected] = useState(0);
  const [counts, setCounts] = useState<Counts>();
  const [categories, setCategories] = useState<Category[]>([]);
  const [cluster, setCluster] = useState<{ anchor: Sample; items: Similar[]; included: Set<string>; cursor: number }>();
  const [undo, setUndo] = useState<UndoEntry[]>([]);
  const [help, setHelp] = useState(false);
  const [status, setStatus] = useState<string>();
  const [error, setError] = useState<string>();
  const grid = useRef<HTMLDivElement>(null);

  const active = useMemo(() => categories.filter((c) => c.active).map((c) => c.name).sort(), [categories]);
  const keys = useMemo(() => categoryKeys(active), [active]);
  const keyOf = useMemo(() => new Map([...keys].map(([k, c]) => [c, k])), [keys]);

  const loadCounts = useCallback(async () => {
    const { data } = await api.GET('/samples/counts');
    if (data) setCounts(data);
  }, []);
  const loadCategories = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/categories');
    if (data) setCategories(data.items);
    else setError(errorText(err, response.status));
  }, []);
  const load = useCallback(async () => {
    const query = { ...compact({ reason: filters.reason, category: filters.category, device: filters.device }), state: filters.state, order: filters.order, limit: PAGE };
    const { data, error: err, response } = await api.GET('/samples', { params: { query: query as Query } });
    if (data) {
      setItems(data.items);
      setSelected((s) => Math.min(s, Math.max(0, data.items.length - 1)));
      setError(undefined);
    } else setError(errorText(err, response.status));
    void loadCounts();
  }, [filters, loadCounts]);

  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    void loadCategories();
  }, [loadCategories]);
  // Keyboard-first: the queue has the focus when the screen opens (not the nav link that led here).
  useEffect(() => {
    grid.current?.focus({ preventScroll: true });
  }, []);

  const current = items[selected];

  /** Apply `category` (or a skip) to `targets`, remember how to undo it, and drop them from a queue they no longer match. */
  const apply = useCallback(
    async (targets: Sample[], category: string | 'skip') => {
      if (targets.length === 0) return;
      const before = targets.map((t) => ({ id: t.id, state: t.state, label: t.label }));
      let ok: string[] = [];
      if (category === 'skip') {
        const { data, error: err, response } = await api.POST('/samples/{id}/skip', { params: { path: { id: (targets[0] as Sample).id } } });
        if (!data) return setError(errorText(err, response.status));
        ok = [(targets[0] as Sample).id];
      } else if (targets.length === 1) {
        const { data, error: err, response } = await api.POST('/samples/{id}/label', { params: { path: { id: (targets[0] as Sample).id } }, body: { category } });
        if (!data) return setError(errorText(err, response.status));
        ok = [(targets[0] as Sample).id];
      } else {
        const { data, error: err, response } = await api.POST('/samples/labels', { body: { ids: targets.map((t) => t.id), category } });
        if (!data) return setError(errorText(err, response.status));
        ok = data.labelled;
      }
      const done = new Set(ok);
      const what = category === 'skip' ? `skipped sample ${ok[0]}` : `labelled ${ok.length} sample${ok.length === 1 ? '' : 's'} ${category}`;
      setUndo((u) => [...u.slice(-49), { what, before: before.filter((b) => done.has(b.id)) }]);
      setStatus(`${what}. Press u to undo.`);
      setError(undefined);
      const newState: Sample['state'] = category === 'skip' ? 'skipped' : 'labelled';
      setItems((list) => {
        const next = newState === filters.state ? list.map((s) => (done.has(s.id) ? { ...s, state: newState, label: category === 'skip' ? null : category } : s)) : list.filter((s) => !done.has(s.id));
        setSelected((i) => Math.min(i, Math.max(0, next.length - 1)));
        if (next.length < PAGE / 4) void load();
        return next;
      });
      setCluster(undefined);
      void loadCounts();
    },
    [filters.state, load, loadCounts],
  );

  const undoLast = useCallback(async () => {
    const last = undo[undo.length - 1];
    if (!last) return setStatus('Nothing to undo.');
    setUndo((u) => u.slice(0, -1));
    for (const b of last.before) {
      const path = { params: { path: { id: b.id } } };
      const r =
        b.state === 'labelled' && b.label
          ? await api.POST('/samples/{id}/label', { ...path, body: { category: b.label } })
          : b.state === 'skipped'
            ? await api.POST('/samples/{id}/skip', path)
            : await api.POST('/samples/{id}/requeue', path);
      if (!r.data) setError(errorText(r.error, r.response.status));
    }
    setStatus(`Undone: ${last.what}.`);
    await load();
  }, [undo, load]);

  const openCluster = useCallback(async (anchor: Sample) => {
    const { data, error: err, response } = await api.GET('/samples/{id}/similar', { params: { path: { id: anchor.id }, query: { limit: 24 } } });
    if (!data) return setError(errorText(err, response.status));
    // Offer the ones still to be labelled; the most similar first (as the hub orders them).
    const open = data.items.filter((s) => s.state === 'pending');
    setCluster({ anchor, items: open, included: new Set(open.map((s) => s.id)), cursor: 0 });
  }, []);

  const clusterTargets = useCallback((): Sample[] => (cluster ? [cluster.anchor, ...cluster.items.filter((s) => cluster.included.has(s.id))] : []), [cluster]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (typingInField(e) || e.altKey || e.metaKey) return;
      const key = e.key;
      if ((e.ctrlKey && key.toLowerCase() === 'z') || (!e.ctrlKey && key === 'u')) {
        e.preventDefault();
        void undoLast();
        return;
      }
      if (e.ctrlKey) return;
      if (key === '?') return setHelp((h) => !h);
      if (key === 'Escape') {
        setHelp(false);
        setCluster(undefined);
        return;
      }
      if (cluster) {
        const n = cluster.items.length;
        if (key === 'ArrowDown' || key === 'ArrowRight') {
          e.preventDefault();
          return setCluster({ ...cluster, cursor: Math.min(n - 1, cluster.cursor + 1) });
        }
        if (key === 'ArrowUp' || key === 'ArrowLeft') {
          e.preventDefault();
          return setCluster({ ...cluster, cursor: Math.max(0, cluster.cursor - 1) });
        }
        if (key === ' ') {
          e.preventDefault();
          const id = cluster.items[cluster.cursor]?.id;
          if (!id) return;
          const included = new Set(cluster.included);
          if (!included.delete(id)) included.add(id);
          return setCluster({ ...cluster, included });
        }
        const category = keys.get(key.toLowerCase());
        if (category) void apply(clusterTargets(), category);
        return;
      }
      if (!current) return;
      const cols = grid.current ? getComputedStyle(grid.current).gridTemplateColumns.split(' ').length : 1;
      const move: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols };
      if (key in move) {
        e.preventDefault();
        setSelected((i) => Math.max(0, Math.min(items.length - 1, i + (move[key] as number))));
        return;
      }
      if (key === 's') return void apply([current], 'skip');
      if (key === 'Enter') return void openCluster(current);
      const category = keys.get(key.toLowerCase());
      if (category) void apply([current], category);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [cluster, current, items.length, keys, apply, undoLast, openCluster, clusterTargets]);

  useEffect(() => {
    grid.current?.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: 'nearest' });
  }, [selected, items]);

  return (
    <section className="labelling">
      <h1>Labelling queue</h1>
      <StateCounts counts={counts} state={filters.state} onPick={(state) => setFilters({ ...filters, state })} />
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          order
          <select name="order" value={filters.order} onChange={(e) => setFilters({ ...filters, order: e.target.value as SampleOrder })}>
            {ORDERS.map(([o, text]) => (
              <option key={o} value={o}>
                {text}
              </option>
            ))}
          </select>
        </label>
        <label>
          reason
          <select name="reason" value={filters.reason} onChange={(e) => setFilters({ ...filters, reason: e.target.value })}>
            <option value="">all</option>
            {REASONS.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          predicted category
          <select name="category" value={filters.category} onChange={(e) => setFilters({ ...filters, category: e.target.value })}>
            <option value="">all</option>
            {categories.map((c) => (
              <option key={c.name}>{c.name}</option>
            ))}
          </select>
        </label>
        <label>
          device
          <input name="device" value={filters.device} placeholder="all" onChange={(e) => setFilters({ ...filters, device: e.target.value.trim() })} />
        </label>
        <button type="button" onClick={() => setHelp(true)} title="keyboard shortcuts">
          ? keys
        </button>
      </form>

      <ul className="category-keys" aria-label="category keys">
        {active.map((c) => (
          <li key={c}>
            <kbd>{keyOf.get(c)}</kbd> {c}
          </li>
        ))}
        <li>
          <kbd>s</kbd> skip
        </li>
        <li>
          <kbd>u</kbd> undo
        </li>
        <li>
          <kbd>Enter</kbd> similar
        </li>
      </ul>
      {error && <p className="error">{error}</p>}
      <p className="muted" role="status" data-testid="labelling-status">
        {status ?? 'Use the arrow keys to pick a sample and a category key to label it.'}
      </p>

      <div className={cluster ? 'labelling-body with-cluster' : 'labelling-body'}>
        <div className="sample-grid" ref={grid} role="listbox" tabIndex={0} aria-label="samples" data-testid="sample-grid">
          {items.map((s, i) => (
            <SampleCard key={s.id} sample={s} selected={i === selected} keyOf={keyOf} onClick={() => setSelected(i)} />
          ))}
          {items.length === 0 && <p className="empty">No {filters.state} samples{filters.reason || filters.category || filters.device ? ' matching these filters' : ''}.</p>}
        </div>
        {cluster && (
          <aside className="cluster" data-testid="cluster" aria-label="similar samples">
            <h2>Similar to sample {cluster.anchor.id}</h2>
            <p className="muted">
              {cluster.included.size + 1} selected (this one and {cluster.included.size} similar). Press a category key to label them all, Space to include or leave out
              the highlighted one, Esc to close.
            </p>
            <BulkLabel active={active} count={cluster.included.size + 1} onLabel={(c) => void apply(clusterTargets(), c)} />
            <ol>
              {cluster.items.map((s, i) => (
                <li key={s.id} className={i === cluster.cursor ? 'cursor' : ''} data-sample-id={s.id}>
                  <label>
                    <input
                      type="checkbox"
                      checked={cluster.included.has(s.id)}
                      onChange={() => {
                        const included = new Set(cluster.included);
                        if (!included.delete(s.id)) included.add(s.id);
                        setCluster({ ...cluster, included, cursor: i });
                      }}
                    />
                    <AuthImage path={s.thumbnail.url} alt={`sample ${s.id}`} className="thumb" />
                    <span>
                      {s.scored.category} {pct(s.scored.confidence)}
                      <br />
                      <span className="muted">similarity {s.similarity.toFixed(3)}</span>
                    </span>
                  </label>
                </li>
              ))}
              {cluster.items.length === 0 && <li className="empty">No pending samples like this one.</li>}
            </ol>
          </aside>
        )}
      </div>

      <IfRole role="operator">
        <Categories categories={categories} reload={loadCategories} />
      </IfRole>

      {help && (
        <div className="keys-help" role="dialog" aria-label="keyboard shortcuts" onClick={() => setHelp(false)}>
          <div>
            <h2>Keys</h2>
            <table>
              <tbody>
                {QUEUE_KEYS.map(([k, text]) => (
                  <tr key={k}>
                    <td>
                      <kbd>{k}</kbd>
                    </td>
                    <td>{text}</td>
                  </tr>
                ))}
                {active.map((c) => (
                  <tr key={c}>
                    <td>
                      <kbd>{keyOf.get(c)}</kbd>
                    </td>
                    <td>label {c}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </section>
  );
}

function StateCounts({ counts, state, onPick }: { counts: Counts | undefined; state: SampleState; onPick(s: SampleState): void }) {
  return (
    <div className="state-counts" role="tablist" aria-label="samples per state">
      {STATES.map((s) => (
        <button key={s} role="tab" aria-selected={s === state} className={s === state ? 'active' : ''} onClick={() => onPick(s)} data-testid={`count-${s}`}>
          {s} <strong>{counts?.states[s] ?? '…'}</strong>
        </button>
      ))}
    </div>
  );
}

function SampleCard({ sample: s, selected, keyOf, onClick }: { sample: Sample; selected: boolean; keyOf: Map<string, string>; onClick(): void }) {
  return (
    <div role="option" aria-selected={selected} className={selected ? 'sample selected' : 'sample'} onClick={onClick} data-sample-id={s.id}>
      <AuthImage path={s.thumbnail.url} alt={`sample ${s.id}`} className="sample-thumb" />
      <div className="prediction">
        <strong>{s.label ?? s.scored.category}</strong> {s.label ? <span className="pill ok">labelled</span> : pct(s.scored.confidence)}
      </div>
      <ol className="topk">
        {s.scored.topK.slice(0, 3).map((t) => (
          <li key={t.category}>
            <span className="bar" style={{ width: pct(t.confidence) }} />
            <span>
              {keyOf.has(t.category) && <kbd>{keyOf.get(t.category)}</kbd>} {t.category} {pct(t.confidence)}
            </span>
          </li>
        ))}
      </ol>
      <div className="muted">
        {s.reason.replace('_', ' ')} · margin {s.scored.margin.toFixed(2)} · {s.deviceId}
      </div>
    </div>
  );
}

function BulkLabel({ active, count, onLabel }: { active: string[]; count: number; onLabel(category: string): void }) {
  const [category, setCategory] = useState('');
  return (
    <form
      className="toolbar"
      onSubmit={(e) => {
        e.preventDefault();
        if (category) onLabel(category);
      }}
    >
      <select aria-label="bulk category" value={category} onChange={(e) => setCategory(e.target.value)}>
        <option value="">category…</option>
        {active.map((c) => (
          <option key={c}>{c}</option>
        ))}
      </select>
      <button type="submit" disabled={!category}>
        Label {count}
      </button>
    </form>
  );
}

function Categories({ categories, reload }: { categories: Category[]; reload(): Promise<void> }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string>();
  const add = async (e: FormEvent) => {
    e.preventDefault();
    const { data, error: err, response } = await api.POST('/categories', { body: { name: name.trim() } });
    if (!data) return setError(errorText(err, response.status));
    setName('');
    setError(undefined);
    await reload();
  };
  const retire = async (n: string) => {
    const { data, error: err, response } = await api.POST('/categories/{name}/retire', { params: { path: { name: n } } });
    setError(data ? undefined : errorText(err, response.status));
    await reload();
  };
  return (
    <details className="categories">
      <summary>Categories ({categories.filter((c) => c.active).length} active)</summary>
      <table>
        <tbody>
          {categories.map((c) => (
            <tr key={c.name}>
              <td>{c.name}</td>
              <td>{c.active ? <span className="pill ok">active</span> : <span className="pill off">retired</span>}</td>
              <td>
                {c.active ? (
                  <button onClick={() => void retire(c.name)}>Retire</button>
                ) : (
                  <button onClick={() => void api.POST('/categories', { body: { name: c.name } }).then(() => reload())}>Bring back</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="toolbar" onSubmit={add}>
        <input aria-label="new category" placeholder="new category (e.g. oat-milk)" value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit" disabled={!name.trim()}>
          Add category
        </button>
      </form>
      {error && <p className="error">{error}</p>}
    </details>
  );
}
