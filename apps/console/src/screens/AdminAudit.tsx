import { useEffect, useState } from 'react';
import { api, errorText } from '../api/client';
import type { components, operations } from '../api/openapi';
import { compact } from '../format';

type Page = components['schemas']['AuditPageDto'];
type Method = NonNullable<NonNullable<operations['AuditController_find']['parameters']['query']>['method']>;
const METHODS: Method[] = ['POST', 'PUT', 'PATCH', 'DELETE', 'GET', 'HEAD'];
const PAGE_SIZE = 50;

/** `datetime-local` input value (local time, no zone) as an ISO instant; '' stays ''. */
function isoOf(local: string): string {
  return local ? new Date(local).toISOString() : '';
}

/** The audit log, newest first: filter by actor, route prefix, method and time; page with the hub's cursor. */
export function AdminAudit() {
  const [filters, setFilters] = useState({ actor: '', route: '', method: '', from: '', to: '' });
  /** Cursors of the pages before the current one (to go back), and the current one. */
  const [cursors, setCursors] = useState<Array<string | undefined>>([]);
  const [cursor, setCursor] = useState<string>();
  const [page, setPage] = useState<Page>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    let live = true;
    void (async () => {
      const query = {
        ...compact({ actor: filters.actor, route: filters.route, from: isoOf(filters.from), to: isoOf(filters.to), cursor }),
        ...(filters.method ? { method: filters.method as Method } : {}),
        limit: PAGE_SIZE,
      };
      const { data, error: err, response } = await api.GET('/audit', { params: { query } });
      if (!live) return;
      if (data) {
        setPage(data);
        setError(undefined);
      } else setError(errorText(err, response.status));
    })();
    return () => {
      live = false;
    };
  }, [filters, cursor]);

  const setFilter = (name: keyof typeof filters, value: string) => {
    setFilters({ ...filters, [name]: value });
    setCursors([]);
    setCursor(undefined);
  };

  return (
    <section aria-labelledby="audit-h">
      <h2 id="audit-h">Audit log</h2>
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Audit filters">
        <label>
          actor
          <input name="actor" value={filters.actor} placeholder="key:<id>, device:<id>" onChange={(e) => setFilter('actor', e.target.value.trim())} />
        </label>
        <label>
          route starts with
          <input name="route" value={filters.route} placeholder="/api-keys" onChange={(e) => setFilter('route', e.target.value.trim())} />
        </label>
        <label>
          method
          <select name="method" value={filters.method} onChange={(e) => setFilter('method', e.target.value)}>
            <option value="">all</option>
            {METHODS.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          from
          <input name="from" type="datetime-local" value={filters.from} onChange={(e) => setFilter('from', e.target.value)} />
        </label>
        <label>
          to
          <input name="to" type="datetime-local" value={filters.to} onChange={(e) => setFilter('to', e.target.value)} />
        </label>
      </form>
      {error && <p className="error">{error}</p>}
      {page && (
        <>
          <table data-testid="audit-log">
            <thead>
              <tr>
                <th>When</th>
                <th>Actor</th>
                <th>Request</th>
                <th className="num">Status</th>
                <th>Denied</th>
                <th>Request id</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((e) => (
                <tr key={e.id}>
                  <td title={e.at}>{new Date(e.at).toLocaleString()}</td>
                  <td>
                    {e.actor} {e.role && <span className="muted">({e.role})</span>}
                  </td>
                  <td>
                    <code>
                      {e.method} {e.route}
                    </code>{' '}
                    {Object.keys(e.params).length > 0 && (
                      <span className="muted">
                        {Object.entries(e.params)
                          .map(([k, v]) => `${k}=${v}`)
                          .join(' ')}
                      </span>
                    )}
                  </td>
                  <td className="num">{e.status}</td>
                  <td>
                    {e.reason && (
                      <>
                        {e.reason}
                        {e.count > 1 && ` ×${e.count}`} {e.address && <span className="muted">from {e.address}</span>}
                      </>
                    )}
                  </td>
                  <td className="muted">{e.requestId}</td>
                </tr>
              ))}
              {page.items.length === 0 && (
                <tr>
                  <td colSpan={6} className="empty">
                    No entries{Object.values(filters).some(Boolean) ? ' match these filters' : ' yet'}.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <div className="toolbar">
            <button
              type="button"
              disabled={cursors.length === 0}
              onClick={() => {
                setCursor(cursors[cursors.length - 1]);
                setCursors(cursors.slice(0, -1));
              }}
            >
              ← Newer
            </button>
            <button
              type="button"
              disabled={!page.nextCursor}
              onClick={() => {
                setCursors([...cursors, cursor]);
                setCursor(page.nextCursor ?? undefined);
              }}
            >
              Older →
            </button>
          </div>
        </>
      )}
    </section>
  );
}
