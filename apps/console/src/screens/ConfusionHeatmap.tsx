/**
 * The confusion matrix drawn as a heat map (a CSS grid): rows are the true category, columns
 * the predicted one; each cell's colour is its share of the row (recall on the diagonal,
 * confusion elsewhere), with the count written in it.
 */
export function ConfusionHeatmap({ labels, confusion }: { labels: string[]; confusion: number[][] }) {
  const n = labels.length;
  return (
    <figure className="heatmap" data-testid="confusion-heatmap" aria-label="confusion matrix">
      <div className="heatmap-grid" style={{ gridTemplateColumns: `max-content repeat(${n}, minmax(1.8rem, 2.6rem))` }}>
        <span className="heatmap-corner">true ↓ / predicted →</span>
        {labels.map((l) => (
          <span key={`c-${l}`} className="heatmap-col" title={l}>
            {l}
          </span>
        ))}
        {labels.map((truth, i) => {
          const row = confusion[i] ?? [];
          const total = row.reduce((a, b) => a + b, 0);
          return [
            <span key={`r-${truth}`} className="heatmap-row" title={truth}>
              {truth}
            </span>,
            ...labels.map((predicted, j) => {
              const count = row[j] ?? 0;
              const share = total > 0 ? count / total : 0;
              const hue = i === j ? '42, 162, 90' : '214, 69, 50';
              return (
                <span
                  key={`${truth}-${predicted}`}
                  className="heatmap-cell"
                  style={{ background: `rgba(${hue}, ${share === 0 ? 0.04 : 0.15 + 0.85 * share})`, color: share > 0.55 ? '#fff' : '#1d2430' }}
                  title={`${truth} classified as ${predicted}: ${count} of ${total} (${Math.round(share * 100)}%)`}
                >
                  {count || ''}
                </span>
              );
            }),
          ];
        })}
      </div>
      <figcaption className="muted">Rows: true category; columns: predicted. Green: correct share of the row; red: confused.</figcaption>
    </figure>
  );
}
