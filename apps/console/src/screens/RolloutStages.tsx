import type { components } from '../api/openapi';

type Stage = components['schemas']['RolloutStageDto'];
type Counts = components['schemas']['RolloutCountsDto'];

/** Device states in the order a device goes through them. */
export const DEVICE_STATES: Array<keyof Counts> = ['pending', 'offered', 'downloading', 'verified', 'shadowing', 'active', 'rejected', 'rolled_back'];

/** One chip per stage: "1 · 10% passed". */
export function StageBar({ stages }: { stages: Stage[] }) {
  return (
    <span className="stagebar">
      {stages.map((s) => (
        <span key={s.index} className={`chip stage-${s.state}`} data-testid={`stage-${s.index + 1}`} data-state={s.state} title={`stage ${s.index + 1}: ${s.percent}% of the target, ${s.state}`}>
          {s.index + 1} · {s.percent}% {s.state}
        </span>
      ))}
    </span>
  );
}

/** A stage's predicted inventory change in a few words: "25.0% of 80 frames; milk → yogurt 25.0%". */
function changeText(c: Stage['predictedChange']): string {
  if (!c || c.frames === 0) return '—';
  const top = c.pairs[0];
  return `${(c.share * 100).toFixed(1)}% of ${c.frames} frames${top ? `; ${top.from} → ${top.to} ${(top.share * 100).toFixed(1)}%` : ''}`;
}

/** Per stage: its rules, when it started, how many of its devices are in each state, and what its devices' shadow runs predict. */
export function StageTable({ stages }: { stages: Stage[] }) {
  return (
    <table data-testid="rollout-stages">
      <thead>
        <tr>
          <th>Stage</th>
          <th>State</th>
          <th>Rules</th>
          <th>Started</th>
          <th className="num">Devices</th>
          {DEVICE_STATES.map((k) => (
            <th key={k} className="num">
              {k.replace('_', ' ')}
            </th>
          ))}
          <th>Predicted change</th>
        </tr>
      </thead>
      <tbody>
        {stages.map((s) => (
          <tr key={s.index} data-stage={s.index + 1} data-state={s.state}>
            <td>
              {s.index + 1} · {s.percent}%
            </td>
            <td>
              <span className={`chip stage-${s.state}`}>{s.state}</span>
            </td>
            <td className="muted rules">
              soak {s.minSoakSeconds} s, promote at {Math.round(s.successThreshold * 100)}% active, abort above {s.abort.maxFailurePercent}% failed after {s.abort.minDevices}
            </td>
            <td title={s.startedAt ?? undefined}>{s.startedAt ? new Date(s.startedAt).toLocaleTimeString() : '—'}</td>
            <td className="num">{s.devices}</td>
            {DEVICE_STATES.map((k) => (
              <td key={k} className={`num${s.counts[k] ? '' : ' muted'}`} data-count={k}>
                {s.counts[k]}
              </td>
            ))}
            <td data-testid="stage-predicted-change">{changeText(s.predictedChange)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
