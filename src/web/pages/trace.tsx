/** Message trace: find messages by Message-ID, sender, recipient and time, then one message's events per recipient. */
import { useState } from 'preact/hooks';
import { api, seg } from '../api';
import { formatTime, Page, TableBox, useLoad, useNotice, type Notices } from '../components';

interface Found {
  id: string;
  at: string;
  direction: 'inbound' | 'outbound' | 'both';
  /** Envelope sender; '' for a bounce. */
  sender: string | null;
  recipients: string[];
  messageId: string | null;
  subject: string | null;
}
interface MessageTrace {
  id: string;
  sender: string | null;
  localCopies: number;
  recipients: Array<{ address: string; status: string; events: Array<{ at: string; event: string; reply: string | null }> }>;
}

const FIELDS = [
  ['messageId', 'Message ID', 'text'],
  ['sender', 'Sender', 'text'],
  ['recipient', 'Recipient', 'text'],
  ['since', 'From', 'datetime-local'],
  ['until', 'To', 'datetime-local'],
] as const;
type Form = Record<(typeof FIELDS)[number][0], string>;

/** A datetime-local value (local time, no zone) as the ISO instant the API takes. */
const iso = (local: string) => (local ? new Date(local).toISOString() : '');

export function Trace() {
  const notices = useNotice();
  const [form, setForm] = useState<Form>({ messageId: '', sender: '', recipient: '', since: '', until: '' });
  const [results, setResults] = useState<Found[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [shown, setShown] = useState<string | null>(null);

  const search = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setShown(null);
    api
      .get<{ messages: Found[] }>('/trace', {
        messageId: form.messageId.trim(),
        sender: form.sender.trim(),
        recipient: form.recipient.trim(),
        since: iso(form.since),
        until: iso(form.until),
        limit: 100,
      })
      .then((r) => {
        setResults(r.messages);
        notices.clear();
      }, notices.fail)
      .finally(() => setBusy(false));
  };

  return (
    <Page title="Trace" notices={notices}>
      <form class="grid-form wide" onSubmit={search}>
        {FIELDS.map(([key, label, type]) => (
          <label key={key}>
            {label}
            <input type={type} value={form[key]} onInput={(e) => setForm({ ...form, [key]: e.currentTarget.value })} spellcheck={false} />
          </label>
        ))}
        <button disabled={busy}>Search</button>
      </form>
      {results && (
        <p class="muted" aria-live="polite">
          {results.length === 0 ? 'No messages match.' : `${results.length} message${results.length === 1 ? '' : 's'}, newest first.`}
        </p>
      )}
      {results && results.length > 0 && (
        <TableBox label="Messages found">
          <thead>
            <tr>
              <th scope="col">Tern ID</th>
              <th scope="col">Time</th>
              <th scope="col">Direction</th>
              <th scope="col">Sender</th>
              <th scope="col">Recipients</th>
              <th scope="col">Subject</th>
              <th scope="col">Message-ID</th>
            </tr>
          </thead>
          <tbody>
            {results.map((m) => (
              <tr key={m.id}>
                <th scope="row">
                  <button type="button" class="link mono" aria-expanded={shown === m.id} onClick={() => setShown(shown === m.id ? null : m.id)}>
                    {m.id}
                  </button>
                </th>
                <td>{formatTime(m.at)}</td>
                <td>{m.direction}</td>
                <td>{m.sender || <span class="muted">(none)</span>}</td>
                <td>{m.recipients.join(', ')}</td>
                <td>{m.subject ?? '—'}</td>
                <td class="mono small">{m.messageId ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </TableBox>
      )}
      {shown && <MessageView key={shown} id={shown} notices={notices} />}
    </Page>
  );
}

function MessageView(props: { id: string; notices: Notices }) {
  const { data: m } = useLoad(() => api.get<MessageTrace>(`/messages/${seg(props.id)}`), [], props.notices);
  return (
    <section class="panel" aria-labelledby="message-title">
      <h2 id="message-title">Message {props.id}</h2>
      {m && (
        <>
          <p>
            From {m.sender || '(empty sender)'}; {m.localCopies} local {m.localCopies === 1 ? 'copy' : 'copies'} stored.
          </p>
          {m.recipients.length === 0 && <p class="muted">No events recorded for its recipients.</p>}
          {m.recipients.map((r) => (
            <div key={r.address} class="recipient">
              <h3>
                {r.address} <span class="badge">{r.status}</span>
              </h3>
              <TableBox label={`Events for ${r.address}`}>
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Event</th>
                    <th scope="col">Remote reply</th>
                  </tr>
                </thead>
                <tbody>
                  {r.events.map((ev, i) => (
                    <tr key={i}>
                      <td>{formatTime(ev.at)}</td>
                      <td>{ev.event}</td>
                      <td class="reply">{ev.reply ?? '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </TableBox>
            </div>
          ))}
        </>
      )}
    </section>
  );
}
