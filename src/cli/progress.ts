/**
 * Progress of a long CLI command (imports, exports): on a terminal a bar redrawn in place
 * with counts and rate; otherwise a plain line every few seconds; `--json` prints nothing
 * while it runs (the command prints one JSON summary at the end). Notes go to stderr as
 * lines. Generic: any command that counts items and bytes can use it.
 */
export interface CliProgress {
  total(items: number): void;
  /** One more item, of `bytes` bytes. */
  advance(bytes: number): void;
  /** Where a job that counts for itself has come (a whole-site transfer counts rows). */
  set(done: number, bytes: number, total?: number): void;
  note(line: string): void;
  /** Ends the bar (a final line with the totals). */
  finish(): void;
}

const LINE_EVERY_MS = 5000;
const DRAW_EVERY_MS = 100;

const human = (bytes: number) =>
  bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(1)} GiB` : bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;

export function createProgress(label: string, o: { json?: boolean; stream?: NodeJS.WriteStream; unit?: string } = {}): CliProgress {
  const unit = o.unit ?? 'messages';
  const stream = o.stream ?? process.stderr;
  const tty = Boolean(stream.isTTY) && !o.json;
  const started = Date.now();
  let total: number | null = null;
  let done = 0;
  let bytes = 0;
  let last = tty ? 0 : started; // plain lines start after the first interval
  const status = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const count = total === null ? `${done}` : `${done}/${total}`;
    return `${count} ${unit}, ${human(bytes)}, ${(done / seconds).toFixed(1)} ${unit === 'messages' ? 'msg' : unit}/s, ${human(bytes / seconds)}/s`;
  };
  const draw = (force = false) => {
    if (o.json) return;
    const now = Date.now();
    if (!force && now - last < (tty ? DRAW_EVERY_MS : LINE_EVERY_MS)) return;
    last = now;
    if (!tty) {
      stream.write(`${label}: ${status()}\n`);
      return;
    }
    const width = 30;
    const filled = total ? Math.round((Math.min(done, total) / total) * width) : 0;
    const bar = total ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    stream.write(`\r\x1b[K${label} ${bar}${status()}`);
  };
  return {
    total(items) {
      total = items;
    },
    advance(n) {
      done++;
      bytes += n;
      draw();
    },
    set(n, b, t) {
      done = n;
      bytes = b;
      if (t !== undefined) total = t;
      draw();
    },
    note(line) {
      if (o.json) return;
      stream.write(`${tty ? '\r\x1b[K' : ''}${label}: ${line}\n`);
      if (tty) draw(true);
    },
    finish() {
      if (o.json || (done === 0 && !tty)) return;
      draw(true);
      if (tty) stream.write('\n');
    },
  };
}
