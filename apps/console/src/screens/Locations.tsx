import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link } from 'wouter';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { useHubEvent } from '../events';
import { ago, compact } from '../format';

type Location = components['schemas']['LocationDto'];

export default function LocationsScreen() {
  const [filters, setFilters] = useState({ site: '', zone: '', category: '' });
  const [items, setItems] = useState<Location[]>([]);
  const [error, setError] = useState<string>();
  const scope = useMemo(() => compact(filters), [filters]);
  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/locations', { params: { query: { ...scope, limit: 200 } } });
    if (data) setItems(data.items);
    setError(data ? undefined : errorText(err, response.status));
  }, [scope]);
  useEffect(() => void load(), [load]);
  useHubEvent('inventory', () => void load(), load);
  return (
    <section>
      <h1>Locations</h1>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        {(['site', 'zone', 'category'] as const).map((name) => (
          <label key={name}>
            {name}
            <input name={name} value={filters[name]} placeholder="all" onChange={(e) => setFilters({ ...filters, [name]: e.target.value.trim() })} />
          </label>
        ))}
      </form>
      {error && <p className="error">{error}</p>}
      <table data-testid="locations">
        <thead>
          <tr>
            <th>Location</th>
            <th>Site</th>
            <th>State</th>
            <th className="num">Confidence</th>
            <th>Last observed</th>
          </tr>
        </thead>
        <tbody>
          {items.map((l) => (
            <tr key={`${l.site}/${l.code}`}>
              <td>
                <Link href={`/locations/${encodeURIComponent(l.site)}/${encodeURIComponent(l.code)}`}>{l.code}</Link>
              </td>
              <td>{l.site}</td>
              <td>{l.state?.category ?? '–'}</td>
              <td className="num">{l.state ? l.state.confidence.toFixed(2) : '–'}</td>
              <td>
                {ago(l.lastObservedAt)} {l.stale && <span className="pill off">stale</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
