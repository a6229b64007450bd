/** The pieces every page uses: its heading and notices, loading, confirmation dialogs, copy buttons, formatting. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { messageOf } from './api';

/** One notice at a time per page: a success (role="status", maybe with a secret shown once) or an error (role="alert"). */
export type Notice = { kind: 'ok'; text: string; secret?: string } | { kind: 'error'; text: string } | null;

/** A notice for the next page shown (e.g. "Deleted example.com" after leaving the deleted domain's page). */
let flash: Notice = null;
export function setFlash(text: string): void {
  flash = { kind: 'ok', text };
}

export function useNotice() {
  const [notice, setNotice] = useState<Notice>(() => {
    const f = flash;
    flash = null;
    return f;
  });
  return {
    notice,
    ok: (text: string, secret?: string) => setNotice({ kind: 'ok', text, secret }),
    fail: (err: unknown) => setNotice({ kind: 'error', text: messageOf(err) }),
    clear: () => setNotice(null),
  };
}
export type Notices = ReturnType<typeof useNotice>;

/**
 * The page's frame: its one <h1> (focused by main.tsx after a route change, so screen readers hear where they are)
 * and its notice region. The aria-live wrapper is always there, so a notice inserted into it is announced.
 */
export function Page(props: { title: string; notices: Notices; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · Tern`;
  }, [props.title]);
  const n = props.notices.notice;
  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>{props.title}</h1>
        {props.actions}
      </div>
      <div class="notices" aria-live="polite">
        {n?.kind === 'ok' && (
          <div role="status" class="notice ok">
            <p>{n.text}</p>
            {n.secret !== undefined && (
              <p class="secret">
                <code>{n.secret}</code> <CopyButton text={n.secret} label="Copy secret" notices={props.notices} />
              </p>
            )}
          </div>
        )}
        {n?.kind === 'error' && (
          <div role="alert" class="notice error">
            <p>{n.text}</p>
          </div>
        )}
      </div>
      {props.children}
    </>
  );
}

/**
 * Data for a page: loads on mount and whenever `deps` change, `reload()` on demand; a failure becomes the page's
 * error notice. An answer that arrives after a newer request started is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], notices: Notices) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    const n = ++latest.current;
    setLoading(true);
    load().then(
      (d) => {
        if (n !== latest.current) return;
        setData(d);
        setLoading(false);
      },
      (err: unknown) => {
        if (n !== latest.current) return;
        notices.fail(err);
        setLoading(false);
      },
    );
  }, [...deps, tick]);
  return { data, loading, reload: () => setTick((t) => t + 1) };
}

/** `await confirm(question, action)`: true when the action button was chosen, false on Cancel or Escape. */
export function useConfirm() {
  const [ask, setAsk] = useState<{ question: string; action: string; resolve: (ok: boolean) => void } | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (ask && !d.open) {
      d.returnValue = '';
      d.showModal();
    }
  }, [ask]);
  const closed = () => {
    ask?.resolve(dialog.current?.returnValue === 'ok');
    setAsk(null);
  };
  const element = (
    // A form with method="dialog" closes the dialog with the button's value as returnValue; Escape closes it with ''.
    <dialog ref={dialog} aria-labelledby="confirm-question" onClose={closed}>
      <form method="dialog">
        <p id="confirm-question">{ask?.question}</p>
        <div class="buttons">
          <button value="cancel">Cancel</button>
          <button value="ok" class="danger">
            {ask?.action}
          </button>
        </div>
      </form>
    </dialog>
  );
  const confirm = (question: string, action: string) => new Promise<boolean>((resolve) => setAsk({ question, action, resolve }));
  return [element, confirm] as const;
}

/** Copies through the Clipboard API, or (outside a secure context, e.g. plain HTTP to a remote host) a selected text area. */
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('Copying is not allowed here: select the text and copy it by hand.');
}

/** A "Copy" button; `label` is its accessible name (e.g. "Copy TXT record _dmarc.example.com"). */
export function CopyButton(props: { text: string; label: string; notices: Notices | null }) {
  const [copied, setCopied] = useState(false);
  const copy = () => {
    copyText(props.text).then(
      () => {
        setCopied(true);
        window.setTimeout(() => setCopied(false), 1500);
      },
      (err: unknown) => props.notices?.fail(err),
    );
  };
  return (
    <button type="button" class="small" aria-label={props.label} onClick={copy}>
      {copied ? 'Copied' : 'Copy'}
    </button>
  );
}

/**
 * A labelled <select>. The label is a sibling (for=id), not a wrapper: a wrapping label's text would include the
 * options, and the accessible name would no longer be just the label.
 */
export function Select(props: { id: string; label: string; value: string; options: Array<[value: string, text: string]>; onChange: (v: string) => void }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.options.map(([value, text]) => (
          <option key={value} value={value}>
            {text}
          </option>
        ))}
      </select>
    </div>
  );
}

/** A table in its own horizontally scrolling box (the page itself never scrolls sideways); keyboard users can scroll it too. */
/** A table that scrolls inside its own box; `stack`: below 700 px each row becomes a card, its cells labelled by their data-label. */
export function TableBox(props: { label: string; children: ComponentChildren; stack?: boolean }) {
  return (
    <div class="table-box" role="region" aria-label={props.label} tabIndex={0}>
      <table class={props.stack ? 'stack' : undefined}>{props.children}</table>
    </div>
  );
}

/**
 * A list as a table: nothing until it is loaded, `empty` when it has no rows, else a TableBox whose header names
 * `columns` (and an unnamed Actions column when `actions`), with one `row` per item (each a <tr> with its key).
 */
export function ListTable<T>(props: {
  label: string;
  rows: T[] | null | undefined;
  empty: ComponentChildren;
  columns: string[];
  actions?: boolean;
  row: (item: T) => ComponentChildren;
}) {
  if (!props.rows) return null;
  if (props.rows.length === 0) return typeof props.empty === 'string' ? <p>{props.empty}</p> : <>{props.empty}</>;
  return (
    <TableBox label={props.label}>
      <thead>
        <tr>
          {props.columns.map((c) => (
            <th key={c} scope="col">
              {c}
            </th>
          ))}
          {props.actions && (
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          )}
        </tr>
      </thead>
      <tbody>{props.rows.map(props.row)}</tbody>
    </TableBox>
  );
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local time as 2024-05-01 10:42:03; "—" for none. */
export function formatTime(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined || value === '') return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
}

/** 10:42:03 */
export const clock = (d: Date) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;

/** 1.5 MB (binary units, as quotas are given in MB of 1,048,576 bytes). */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/** A debounced copy of `value`: for search fields that query as one types. */
export function useDebounced(value: string, ms = 300): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = window.setTimeout(() => setSettled(value), ms);
    return () => window.clearTimeout(t);
  }, [value, ms]);
  return settled;
}
