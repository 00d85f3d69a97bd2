/**
 * A progress bar on stderr for long work (training, imports, benchmarks). On a TTY it
 * redraws one line; otherwise it prints a line every 10% so CI logs stay readable.
 */
export interface Progress {
  tick(n?: number, note?: string): void;
  done(note?: string): void;
}

export function createProgress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now();
  let current = 0;
  let lastDecile = -1;
  const render = (note?: string): string => {
    const frac = total > 0 ? Math.min(1, current / total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const elapsed = (Date.now() - started) / 1000;
    const eta = frac > 0 && frac < 1 ? ` eta ${Math.round((elapsed / frac) * (1 - frac))}s` : '';
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${current}/${total} ${(frac * 100).toFixed(0)}% ${elapsed.toFixed(1)}s${eta}${note ? ' ' + note : ''}`;
  };
  return {
    tick(n = 1, note) {
      current += n;
      if (stream.isTTY) {
        stream.write(`\r${render(note)}\x1b[K`);
      } else {
        const decile = total > 0 ? Math.floor((current / total) * 10) : 10;
        if (decile !== lastDecile) {
          lastDecile = decile;
          stream.write(render(note) + '\n');
        }
      }
    },
    done(note) {
      const alreadyShown = !stream.isTTY && lastDecile === 10 && current >= total && note === undefined;
      current = Math.max(current, total);
      if (alreadyShown) return;
      stream.write((stream.isTTY ? '\r' : '') + render(note) + (stream.isTTY ? '\x1b[K\n' : '\n'));
    },
  };
}
