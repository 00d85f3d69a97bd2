import { useCallback, useEffect, useState } from 'react';
import { Link, useParams } from 'wouter';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { IfRole, useCan } from '../auth';
import { AuthImage } from '../components/AuthImage';
import { useHubEvent } from '../events';
import { ago } from '../format';

type Detail = components['schemas']['LocationDetailDto'];
type Detection = components['schemas']['DetectionDto'];

export default function LocationScreen() {
  const { site, code } = useParams<{ site: string; code: string }>();
  const [detail, setDetail] = useState<Detail>();
  const [thumbs, setThumbs] = useState<Map<string, string>>(new Map());
  const [categories, setCategories] = useState<string[]>([]);
  const [error, setError] = useState<string>();
  const operator = useCan('operator');

  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/locations/{code}', { params: { path: { code }, query: { site, history: 20 } } });
    setError(data ? undefined : errorText(err, response.status));
    if (data) setDetail(data);
  }, [site, code]);
  useEffect(() => void load(), [load]);
  useHubEvent('inventory', (e) => e.site === site && void load(), load);

  // Thumbnails and categories are operators' (samples and the category list need that role).
  useEffect(() => {
    if (!operator || !detail || detail.history.length === 0) return;
    const times = detail.history.map((d) => new Date(d.capturedAt).getTime());
    const from = new Date(Math.min(...times) - 60_000).toISOString();
    const to = new Date(Math.max(...times) + 3600_000).toISOString();
    const wanted = new Set(detail.history.map((d) => d.id));
    void Promise.all(
      (['pending', 'labelled', 'skipped'] as const).map((state) => api.GET('/samples', { params: { query: { site, state, from, to, limit: 500 } } })),
    ).then((pages) => {
      const m = new Map<string, string>();
      for (const p of pages) for (const s of p.data?.items ?? []) if (s.detectionId && wanted.has(s.detectionId)) m.set(s.detectionId, String(s.id));
      setThumbs(m);
    });
  }, [operator, detail, site]);
  useEffect(() => {
    if (!operator) return;
    void api.GET('/categories').then(({ data }) => setCategories((data?.items ?? []).filter((c) => c.active).map((c) => c.name)));
  }, [operator]);

  const correct = async (d: Detection, category: string) => {
    const { error: err, response } = await api.POST('/detections/{id}/correction', { params: { path: { id: d.id } }, body: { category } });
    if (!response.ok) setError(errorText(err, response.status));
    await load();
  };

  if (!detail) return <section>{error ? <p className="error">{error}</p> : <p className="loading">Loading…</p>}</section>;
  return (
    <section>
      <p>
        <Link href="/locations">← Locations</Link>
      </p>
      <h1>
        {detail.code} <span className="muted">{detail.site}, zone {detail.zone}</span>
      </h1>
      {error && <p className="error">{error}</p>}
      <p className="summary" data-testid="location-state">
        {detail.state ? (
          <>
            <strong>{detail.state.category}</strong> ({(detail.state.confidence * 100).toFixed(0)}%), seen by {detail.state.deviceId} {ago(detail.state.capturedAt)}
          </>
        ) : (
          'no confident detection yet'
        )}
        {detail.stale && <span className="pill off">stale</span>}
        {detail.dispute && <span className="pill off">devices disagree: {detail.dispute.categories.join(' vs ')}</span>}
      </p>
      <h2>Recent detections</h2>
      <table data-testid="detections">
        <thead>
          <tr>
            <th>Frame</th>
            <th>Captured</th>
            <th>Device</th>
            <th>Category</th>
            <th className="num">Confidence</th>
            <th>Model</th>
            <IfRole role="operator">
              <th>Correct</th>
            </IfRole>
          </tr>
        </thead>
        <tbody>
          {detail.history.map((d) => {
            const sample = thumbs.get(d.id);
            const corrected = detail.corrections.filter((c) => c.detectionId === d.id).at(-1);
            return (
              <tr key={d.id} data-detection={d.id}>
                <td>{sample ? <AuthImage path={`/samples/${sample}/thumbnail`} alt={`frame ${d.frameId}`} className="thumb" /> : <span className="muted">{d.frameId}</span>}</td>
                <td title={d.capturedAt}>{ago(d.capturedAt)}</td>
                <td>{d.deviceId}</td>
                <td>
                  {d.category}
                  {corrected && <span className="muted"> → {corrected.category ?? ''}</span>}
                </td>
                <td className="num">{d.confidence.toFixed(2)}</td>
                <td>{d.modelVersion}</td>
                <IfRole role="operator">
                  <td>
                    <select aria-label={`correct detection ${d.id}`} value="" onChange={(e) => e.target.value && void correct(d, e.target.value)}>
                      <option value="">correct to…</option>
                      {categories
                        .filter((c) => c !== d.category)
                        .map((c) => (
                          <option key={c} value={c}>
                            {c}
                          </option>
                        ))}
                    </select>
                  </td>
                </IfRole>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
