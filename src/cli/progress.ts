/**
 * Progress of a long command on stderr: on a terminal one line redrawn in place (a bar when
 * the total is known, counts and rate); otherwise a plain line every few seconds, so logs
 * of a scripted run stay readable.
 */
const EVERY_MS_TTY = 200;
const EVERY_MS_PLAIN = 5000;

export interface ProgressReporter {
  /** `done` of `total` items (0 when unknown), `bytes` so far. */
  update(done: number, total: number, bytes?: number): void;
  done(): void;
}

const count = (n: number) => n.toLocaleString('en-US');
const size = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);

export function progressReporter(what: string, out: NodeJS.WriteStream = process.stderr, unit = 'rows'): ProgressReporter {
  const tty = Boolean(out.isTTY);
  const started = Date.now();
  let last = started;
  let drawn = false;
  let state = { done: 0, total: 0, bytes: 0 };
  const line = () => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = `${count(Math.round(state.done / secs))} ${unit}/s`;
    const bytes = state.bytes ? `  ${size(state.bytes)} (${size(state.bytes / secs)}/s)` : '';
    const of = state.total ? `/${count(state.total)}` : '';
    const pct = state.total ? Math.min(1, state.done / state.total) : 0;
    const bar = tty && state.total ? ` [${'#'.repeat(Math.round(pct * 24)).padEnd(24, '.')}] ${(pct * 100).toFixed(0)}%` : '';
    return `${what}${bar}  ${count(state.done)}${of} ${unit}  ${rate}${bytes}`;
  };
  return {
    update(done, total, bytes = 0) {
      state = { done, total, bytes };
      const now = Date.now();
      if (now - last < (tty ? EVERY_MS_TTY : EVERY_MS_PLAIN)) return;
      last = now;
      out.write(tty ? `\r${line()}\x1b[K` : `${line()}\n`);
      drawn = true;
    },
    done() {
      if (drawn && tty) out.write(`\r${line()}\x1b[K\n`);
    },
  };
}
