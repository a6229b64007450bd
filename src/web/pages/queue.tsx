/** The outbound queue: filter, page through (cursor: after = last id), retry, delete, and one entry's headers and trace. */
import { useState } from 'preact/hooks';
import { api } from '../api';
import { ListTable, formatBytes, formatTime, Page, Select, TableBox, useConfirm, useDebounced, useLoad, useNotice, type Notices } from '../components';

interface Entry {
  id: number;
  ternId: string;
  envelopeFrom: string;
  domain: string;
  size: number;
  state: string;
  isBounce: boolean;
  attempts: number;
  nextAttemptAt: string;
  createdAt: string;
  recipients: Array<{ address: string; status: string; reply: string | null }>;
}
interface EntryDetails extends Entry {
  headers?: string;
  events: Array<{ at: string; recipient: string; event: string; reply: string | null }>;
}

const PAGE_SIZE = 100;

export function Queue() {
  const notices = useNotice();
  const [dialog, confirm] = useConfirm();
  const [state, setState] = useState('');
  const [domain, setDomain] = useState('');
  const [minutes, setMinutes] = useState('');
  const age = useDebounced(minutes.trim());
  const filter = { state, domain: useDebounced(domain.trim()), olderThan: /^\d+$/.test(age) ? `${age}m` : '' };
  // The `after` cursor of each page seen so far; the last one is the page shown.
  const [cursors, setCursors] = useState<number[]>([0]);
  const after = cursors.at(-1)!;
  const { data, loading, reload } = useLoad(
    () => api.get<Entry[]>('/queue', { ...filter, after: after || undefined, limit: PAGE_SIZE }),
    [filter.state, filter.domain, filter.olderThan, after],
    notices,
  );
  const [details, setDetails] = useState<number | null>(null);
  const refilter =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      set(v);
      setCursors([0]);
    };

  const retry = (e: Entry) => {
    api.post<{ count: number }>('/queue/retry', { ids: [e.id] }).then((r) => {
      notices.ok(r.count ? `Entry ${e.id} is due now.` : `Entry ${e.id} is no longer queued.`);
      reload();
    }, notices.fail);
  };
  const remove = async (e: Entry) => {
    if (!(await confirm(`Delete queue entry ${e.id} (${e.envelopeFrom || 'bounce'} to ${e.domain}) without delivering or bouncing it?`, 'Delete'))) return;
    api.delete(`/queue/${e.id}`).then(() => {
      notices.ok(`Deleted entry ${e.id}.`);
      if (details === e.id) setDetails(null);
      reload();
    }, notices.fail);
  };

  return (
    <Page title="Queue" notices={notices}>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          reload();
        }}
      >
        <Select
          id="queue-state"
          label="State"
          value={state}
          onChange={refilter(setState)}
          options={[
            ['', 'Any'],
            ['queued', 'queued'],
            ['held', 'held'],
            ['bounce', 'bounce'],
          ]}
        />
        <label>
          Domain
          <input value={domain} onInput={(e) => refilter(setDomain)(e.currentTarget.value)} spellcheck={false} />
        </label>
        <label>
          Older than (minutes)
          <input type="number" min="0" step="1" value={minutes} onInput={(e) => refilter(setMinutes)(e.currentTarget.value)} />
        </label>
        <button disabled={loading}>Refresh</button>
      </form>
      <ListTable
        label="Queue entries"
        rows={data}
        empty={<p>{cursors.length > 1 ? 'No more entries.' : 'Nothing queued matches.'}</p>}
        columns={['ID', 'From', 'To domain', 'Recipients', 'State', 'Attempts', 'Next attempt', 'Queued', 'Size']}
        actions
        row={(e) => (
          <tr key={e.id}>
            <th scope="row">{e.id}</th>
            <td>{e.envelopeFrom || <span class="muted">(bounce)</span>}</td>
            <td>{e.domain}</td>
            <td>{e.recipients.map((r) => r.address).join(', ')}</td>
            <td>{e.state}</td>
            <td>{e.attempts}</td>
            <td>{formatTime(e.nextAttemptAt)}</td>
            <td>{formatTime(e.createdAt)}</td>
            <td>{formatBytes(e.size)}</td>
            <td class="actions">
              <button type="button" class="small" onClick={() => retry(e)}>
                Retry
              </button>
              <button type="button" class="small" aria-expanded={details === e.id} onClick={() => setDetails(details === e.id ? null : e.id)}>
                Details
              </button>
              <button type="button" class="small danger" onClick={() => void remove(e)}>
                Delete
              </button>
            </td>
          </tr>
        )}
      />
      <div class="pager">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous
        </button>
        <button type="button" disabled={!data || data.length < PAGE_SIZE} onClick={() => setCursors([...cursors, data!.at(-1)!.id])}>
          Next
        </button>
      </div>
      {details !== null && <EntryView key={details} id={details} notices={notices} onClose={() => setDetails(null)} />}
      {dialog}
    </Page>
  );
}

function EntryView(props: { id: number; notices: Notices; onClose: () => void }) {
  const { data: e } = useLoad(() => api.get<EntryDetails>(`/queue/${props.id}`), [], props.notices);
  return (
    <section aria-labelledby="entry-title" class="panel">
      <div class="section-head">
        <h2 id="entry-title">Queue entry {props.id}</h2>
        <button type="button" onClick={props.onClose}>
          Close
        </button>
      </div>
      {e && (
        <>
          <dl class="facts">
            <dt>Tern ID</dt>
            <dd class="mono">{e.ternId}</dd>
            <dt>From</dt>
            <dd>{e.envelopeFrom || '(bounce)'}</dd>
            <dt>State</dt>
            <dd>
              {e.state}, {e.attempts} attempts, next {formatTime(e.nextAttemptAt)}
            </dd>
          </dl>
          <h3>Recipients</h3>
          <ul>
            {e.recipients.map((r) => (
              <li key={r.address}>
                {r.address}: {r.status}
                {r.reply && <div class="reply">{r.reply}</div>}
              </li>
            ))}
          </ul>
          <h3>Headers</h3>
          {e.headers ? <pre class="scroll">{e.headers}</pre> : <p class="muted">Not available.</p>}
          <h3>Trace</h3>
          {e.events.length === 0 ? (
            <p class="muted">No events yet.</p>
          ) : (
            <TableBox label={`Trace of entry ${props.id}`}>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Recipient</th>
                  <th scope="col">Event</th>
                  <th scope="col">Remote reply</th>
                </tr>
              </thead>
              <tbody>
                {e.events.map((ev, i) => (
                  <tr key={i}>
                    <td>{formatTime(ev.at)}</td>
                    <td>{ev.recipient}</td>
                    <td>{ev.event}</td>
                    <td class="reply">{ev.reply ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </TableBox>
          )}
        </>
      )}
    </section>
  );
}
