/**
 * Progress for long loops: a redrawn bar on a TTY, plain periodic lines otherwise (CI, pipes, logs).
 */
export interface ProgressOptions {
  label: string;
  total: number;
  /** Stream to draw on; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Minimum milliseconds between plain lines (non-TTY). Default 10 s. */
  lineIntervalMs?: number;
  /** Units already done before this process started (a resumed run): shown, but not counted in the rate. */
  initial?: number;
  /** Force the mode (tests). */
  tty?: boolean;
  now?: () => number;
}

export interface Progress {
  /** Advance by n and optionally show a short status (e.g. "loss=0.31"). */
  tick(n?: number, status?: string): void;
  done(status?: string): void;
  readonly current: number;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean((stream as { isTTY?: boolean }).isTTY);
  const now = opts.now ?? (() => Date.now());
  const interval = opts.lineIntervalMs ?? (Number(process.env.DISTILL_PROGRESS_INTERVAL_MS) || 10_000);
  const start = now();
  const initial = opts.initial ?? 0;
  let current = initial;
  let lastLine = start;
  let lastDraw = 0;
  let finished = false;

  const render = (status?: string): string => {
    const elapsed = (now() - start) / 1000;
    const rate = (current - initial) / Math.max(elapsed, 1e-9);
    const eta = opts.total > current ? (opts.total - current) / Math.max(rate, 1e-9) : 0;
    const pct = opts.total > 0 ? (100 * current) / opts.total : 100;
    return `${opts.label} ${current}/${opts.total} (${pct.toFixed(0)}%) ${rate.toFixed(rate < 10 ? 2 : 0)}/s elapsed ${fmtTime(elapsed)} eta ${fmtTime(eta)}${status ? ' ' + status : ''}`;
  };

  const drawBar = (status?: string) => {
    const width = 24;
    const frac = opts.total > 0 ? Math.min(1, current / opts.total) : 1;
    const filled = Math.round(frac * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const cols = (stream as { columns?: number }).columns ?? 120;
    const line = `${bar} ${render(status)}`.slice(0, cols - 1);
    stream.write(`\r\x1b[2K${line}`);
  };

  return {
    get current() {
      return current;
    },
    tick(n = 1, status?: string) {
      current += n;
      const t = now();
      if (tty) {
        if (t - lastDraw >= 100 || current >= opts.total) {
          lastDraw = t;
          drawBar(status);
        }
      } else if (t - lastLine >= interval) {
        lastLine = t;
        stream.write(render(status) + '\n');
      }
    },
    done(status?: string) {
      if (finished) return;
      finished = true;
      if (tty) {
        drawBar(status);
        stream.write('\n');
      } else {
        stream.write(render(status) + ' done\n');
      }
    },
  };
}
