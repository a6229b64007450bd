/** Webhooks: subscribe a URL to events, pause/resume, send a test event, read the delivery log, delete. */
import { useState } from 'preact/hooks';
import { api, seg } from '../api';
import { ListTable, formatTime, Page, useConfirm, useLoad, useNotice, type Notices } from '../components';

interface Webhook {
  id: string;
  url: string;
  events: string[];
  secret: string;
  domain: string | null;
  description: string;
  enabled: boolean;
  createdAt: string;
}
interface Delivery {
  id: number;
  event: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  finishedAt: string | null;
}

/** The server's list (store.ts WEBHOOK_EVENTS). */
const EVENTS = ['message.received', 'message.delivered', 'message.deferred', 'message.bounced', 'message.failed'];

export function Webhooks() {
  const notices = useNotice();
  const [dialog, confirm] = useConfirm();
  const { data, reload } = useLoad(() => api.get<Webhook[]>('/webhooks'), [], notices);
  const [log, setLog] = useState<string | null>(null);
  // Bumped by a test event: the open log is loaded again to show it.
  const [logVersion, setLogVersion] = useState(0);

  const test = (w: Webhook) => {
    api.post<{ delivery: number }>(`/webhooks/${seg(w.id)}/test`).then((r) => {
      notices.ok(`Test event queued for ${w.url} (delivery ${r.delivery}); its outcome is in the delivery log.`);
      setLog(w.id);
      setLogVersion((v) => v + 1);
    }, notices.fail);
  };
  const toggle = (w: Webhook) => {
    api.patch<Webhook>(`/webhooks/${seg(w.id)}`, { enabled: !w.enabled }).then((u) => {
      notices.ok(u.enabled ? `Resumed ${u.url}.` : `Paused ${u.url}: events wait until it is resumed.`);
      reload();
    }, notices.fail);
  };
  const remove = async (w: Webhook) => {
    if (!(await confirm(`Delete the webhook to ${w.url} with its pending events and its log?`, 'Delete'))) return;
    api.delete(`/webhooks/${seg(w.id)}`).then(() => {
      notices.ok(`Deleted the webhook to ${w.url}.`);
      if (log === w.id) setLog(null);
      reload();
    }, notices.fail);
  };

  const shown = data?.find((w) => w.id === log);
  return (
    <Page title="Webhooks" notices={notices}>
      <CreateWebhook notices={notices} onCreated={reload} />
      <ListTable
        label="Webhooks"
        rows={data}
        empty="No webhooks yet."
        columns={['URL', 'Events', 'Domain', 'State', 'Signing secret']}
        actions
        row={(w) => (
          <tr key={w.id}>
            <th scope="row">
              <span class="mono">{w.url}</span>
              {w.description && <div class="muted small">{w.description}</div>}
            </th>
            <td>{w.events.join(', ')}</td>
            <td>{w.domain ?? 'all'}</td>
            <td>{w.enabled ? 'active' : 'paused'}</td>
            <td>
              <code class="value">{w.secret}</code>
            </td>
            <td class="actions">
              <button type="button" class="small" onClick={() => test(w)}>
                Send test event
              </button>
              <button type="button" class="small" aria-expanded={log === w.id} onClick={() => setLog(log === w.id ? null : w.id)}>
                Deliveries
              </button>
              <button type="button" class="small" onClick={() => toggle(w)}>
                {w.enabled ? 'Pause' : 'Resume'}
              </button>
              <button type="button" class="small danger" onClick={() => void remove(w)}>
                Delete
              </button>
            </td>
          </tr>
        )}
      />
      {shown && <DeliveryLog key={`${shown.id} ${logVersion}`} webhook={shown} notices={notices} />}
      {dialog}
    </Page>
  );
}

function CreateWebhook(props: { notices: Notices; onCreated: () => void }) {
  const empty = { url: '', events: [...EVENTS], domain: '', description: '' };
  const [form, setForm] = useState(empty);
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    api
      .post<Webhook>('/webhooks', {
        url: form.url.trim(),
        events: form.events,
        ...(form.domain.trim() ? { domain: form.domain.trim() } : {}),
        ...(form.description.trim() ? { description: form.description.trim() } : {}),
      })
      .then((w) => {
        props.notices.ok(`Created the webhook to ${w.url}. Its POSTs are signed (Tern-Signature header) with this secret:`, w.secret);
        setForm(empty);
        props.onCreated();
      }, props.notices.fail)
      .finally(() => setBusy(false));
  };
  return (
    <section class="panel" aria-labelledby="new-webhook">
      <h2 id="new-webhook">New webhook</h2>
      <form class="grid-form" onSubmit={submit}>
        <label>
          URL
          <input type="url" value={form.url} onInput={(e) => set({ url: e.currentTarget.value })} required placeholder="https://" spellcheck={false} />
        </label>
        <fieldset>
          <legend>Events</legend>
          {EVENTS.map((ev) => (
            <label class="check" key={ev}>
              <input
                type="checkbox"
                checked={form.events.includes(ev)}
                onChange={(e) => set({ events: e.currentTarget.checked ? [...form.events, ev] : form.events.filter((x) => x !== ev) })}
              />
              {ev}
            </label>
          ))}
        </fieldset>
        <label>
          Domain
          <input value={form.domain} onInput={(e) => set({ domain: e.currentTarget.value })} aria-describedby="hook-domain-hint" spellcheck={false} />
        </label>
        <p id="hook-domain-hint" class="muted small">
          Optional: only events of this domain's mail.
        </p>
        <label>
          Description
          <input value={form.description} onInput={(e) => set({ description: e.currentTarget.value })} maxLength={500} />
        </label>
        <button disabled={busy}>Create webhook</button>
      </form>
    </section>
  );
}

function DeliveryLog(props: { webhook: Webhook; notices: Notices }) {
  const { data, loading, reload } = useLoad(() => api.get<Delivery[]>(`/webhooks/${seg(props.webhook.id)}/deliveries`, { limit: 100 }), [], props.notices);
  return (
    <section aria-labelledby="log-title">
      <div class="section-head">
        <h2 id="log-title">Deliveries to {props.webhook.url}</h2>
        <button type="button" onClick={reload} disabled={loading}>
          Refresh
        </button>
      </div>
      <ListTable
        label="Deliveries"
        rows={data}
        empty="Nothing sent yet."
        columns={['ID', 'Event', 'State', 'Attempts', 'Last answer', 'Created', 'Finished or next try']}
        row={(d) => (
          <tr key={d.id}>
            <td>{d.id}</td>
            <td>{d.event}</td>
            <td>
              <span class={`badge ${d.state === 'delivered' ? 'ok' : d.state === 'failed' ? 'error' : ''}`}>{d.state}</span>
            </td>
            <td>{d.attempts}</td>
            <td>{[d.lastStatus === null ? '' : `HTTP ${d.lastStatus}`, d.lastError ?? ''].filter(Boolean).join(': ') || '—'}</td>
            <td>{formatTime(d.createdAt)}</td>
            <td>{formatTime(d.finishedAt ?? d.nextAttemptAt)}</td>
          </tr>
        )}
      />
    </section>
  );
}
