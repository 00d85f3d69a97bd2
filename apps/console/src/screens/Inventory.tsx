import { useEffect, useState } from 'react';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { ago, compact } from '../format';

type Inventory = components['schemas']['InventoryDto'];

export default function InventoryScreen() {
  const [filters, setFilters] = useState({ site: '', zone: '', category: '' });
  const [data, setData] = useState<Inventory>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    let live = true;
    const load = async () => {
      const { data: d, error: err, response } = await api.GET('/inventory', { params: { query: compact(filters) } });
      if (!live) return;
      if (d) {
        setData(d);
        setError(undefined);
      } else setError(errorText(err, response.status));
    };
    void load();
    const timer = setInterval(load, 5000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [filters]);

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
                <tr key={c.category}>
                  <td>{c.category}</td>
                  <td className="num">{c.locations}</td>
                  <td title={c.newestObservation}>{ago(c.newestObservation)}</td>
                  <td title={c.oldestObservation}>{ago(c.oldestObservation)}</td>
                </tr>
              ))}
              {data.categories.length === 0 && (
                <tr>
                  <td colSpan={4} className="empty">
                    No counts yet: no device has reported a confident detection{filters.site || filters.zone || filters.category ? ' matching these filters' : ''}.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
