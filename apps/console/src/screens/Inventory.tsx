import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link } from 'wouter';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { TimeChart } from '../components/TimeChart';
import { useHubEvent } from '../events';
import { ago, compact } from '../format';

type Inventory = components['schemas']['InventoryDto'];
type History = components['schemas']['HistoryDto'];
type Location = components['schemas']['LocationDto'];

/** History ranges the chart offers: span and bucket. */
const RANGES = {
  '6h': { hours: 6, bucket: 'hour' },
  '24h': { hours: 24, bucket: 'hour' },
  '7d': { hours: 24 * 7, bucket: 'hour' },
  '30d': { hours: 24 * 30, bucket: 'day' },
} as const;
type Range = keyof typeof RANGES;

export default function InventoryScreen() {
  const [filters, setFilters] = useState({ site: '', zone: '', category: '' });
  const [range, setRange] = useState<Range>('24h');
  const [data, setData] = useState<Inventory>();
  const [history, setHistory] = useState<History>();
  const [stale, setStale] = useState<Location[]>([]);
  const [error, setError] = useState<string>();
  const scope = useMemo(() => compact(filters), [filters]);

  const load = useCallback(async () => {
    setError(undefined);
    const { hours, bucket } = RANGES[range];
    const from = new Date(Date.now() - hours * 3600_000).toISOString();
    // Counts first (what the screen is for); history and stale locations need not hold them up.
    const report = (r: { data?: unknown; error?: unknown; response: Response }) => {
      if (!r.data) setError(errorText(r.error, r.response.status));
    };
    await Promise.all([
      api.GET('/inventory', { params: { query: scope } }).then((r) => {
        report(r);
        if (r.data) setData(r.data);
      }),
      api.GET('/inventory/history', { params: { query: { ...scope, bucket, from } } }).then((r) => {
        report(r);
        if (r.data) setHistory(r.data);
      }),
      api.GET('/locations', { params: { query: { ...scope, stale: 'true', limit: 50 } } }).then((r) => {
        report(r);
        if (r.data) setStale(r.data.items);
      }),
    ]);
  }, [scope, range]);

  useEffect(() => {
    void load();
    const t = setInterval(load, 60_000); // freshness ages even when nothing arrives
    return () => clearInterval(t);
  }, [load]);
  // Live: each site's detections arrive as (coalesced) inventory events.
  useHubEvent('inventory', (e) => {
    if (!filters.site || filters.site === e.site) void load();
  }, load);

  const download = async () => {
    const { data: blob, error: err, response } = await api.GET('/inventory.csv', { params: { query: scope }, parseAs: 'blob' });
    if (!blob) return setError(errorText(err, response.status));
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `inventory${filters.site ? `-${filters.site}` : ''}${filters.zone ? `-${filters.zone}` : ''}.csv`;
    a.click();
    URL.revokeObjectURL(a.href);
  };

  const chart = useMemo(() => {
    if (!history) return undefined;
    return {
      times: history.points.map((p) => p.time),
      series: history.categories.map((c) => ({ name: c, values: history.points.map((p) => p.counts[c] ?? 0) })),
    };
  }, [history]);

  return (
    <section>
      <h1>Inventory</h1>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        {(['site', 'zone', 'category'] as const).map((name) => (
          <label key={name}>
            {name}
            <input name={name} value={filters[name]} placeholder="all" onChange={(e) => setFilters({ ...filters, [name]: e.target.value.trim() })} />
          </label>
        ))}
        <button type="button" onClick={download}>
          Download CSV
        </button>
      </form>
      {error && <p className="error">{error}</p>}
      {data && (
        <>
          <p className="summary">
            <strong data-testid="total-locations">{data.totalLocations}</strong> locations counted,{' '}
            <span data-testid="stale-locations">{data.staleLocations}</span> stale (not seen for {Math.round(data.staleAfterS / 60)} min); newest
            observation {ago(data.newestObservation)}
          </p>
          <table className="counts" data-testid="inventory-counts">
            <thead>
              <tr>
                <th>Category</th>
                <th className="num">Locations</th>
                <th>Newest observation</th>
                <th>Oldest observation</th>
              </tr>
            </thead>
            <tbody>
              {data.categories.map((c) => (
                <tr key={c.category} data-category={c.category}>
                  <td>{c.category}</td>
                  <td className="num">{c.locations}</td>
                  <td title={c.newestObservation}>{ago(c.newestObservation)}</td>
                  <td title={c.oldestObservation}>{ago(c.oldestObservation)}</td>
                </tr>
              ))}
              {data.categories.length === 0 && (
                <tr>
                  <td colSpan={4} className="empty">
                    No counts yet: no device has reported a confident detection{Object.keys(scope).length ? ' matching these filters' : ''}.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </>
      )}
      <h2>History</h2>
      <div className="toolbar" role="group" aria-label="time range">
        {(Object.keys(RANGES) as Range[]).map((r) => (
          <button key={r} type="button" aria-pressed={r === range} className={r === range ? 'active' : ''} onClick={() => setRange(r)}>
            {r}
          </button>
        ))}
      </div>
      {chart && chart.times.length > 0 ? (
        <TimeChart title={`Locations per category, per ${history!.bucket}`} times={chart.times} series={chart.series} />
      ) : (
        <p className="empty">No history in this range.</p>
      )}
      <h2>Stale locations</h2>
      {stale.length === 0 ? (
        <p className="empty">None: every location was observed recently.</p>
      ) : (
        <table data-testid="stale-list">
          <thead>
            <tr>
              <th>Location</th>
              <th>Site</th>
              <th>Last observed</th>
              <th>Last state</th>
            </tr>
          </thead>
          <tbody>
            {stale.map((l) => (
              <tr key={`${l.site}/${l.code}`}>
                <td>
                  <Link href={`/locations/${encodeURIComponent(l.site)}/${encodeURIComponent(l.code)}`}>{l.code}</Link>
                </td>
                <td>{l.site}</td>
                <td>{ago(l.lastObservedAt)}</td>
                <td>{l.state?.category ?? '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
