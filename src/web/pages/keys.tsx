/** API keys: create (the key is in that answer only, so it is shown once) and revoke. */
import { useState } from 'preact/hooks';
import { api, seg } from '../api';
import { ListTable, formatTime, Page, useConfirm, useLoad, useNotice } from '../components';

interface ApiKey {
  id: string;
  scopes: string[];
  domain: string | null;
  description: string;
  ratePerMinute: number | null;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  key?: string;
}

const SCOPES = ['send', 'read', 'admin'] as const;
/** A portal sign-in is an API key with this description (src/http/session.ts): one per sign-in, hidden by default. */
const SESSION_PREFIX = 'portal session: ';

export function Keys() {
  const notices = useNotice();
  const [dialog, confirm] = useConfirm();
  const { data, reload } = useLoad(() => api.get<ApiKey[]>('/keys'), [], notices);
  const [form, setForm] = useState({ description: '', scopes: ['send'] as string[], domain: '', rate: '' });
  const [busy, setBusy] = useState(false);
  const [sessions, setSessions] = useState(false);
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });

  const create = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    api
      .post<ApiKey>('/keys', {
        scopes: form.scopes,
        ...(form.description.trim() ? { description: form.description.trim() } : {}),
        ...(form.domain.trim() ? { domain: form.domain.trim() } : {}),
        ...(form.rate.trim() ? { ratePerMinute: Number(form.rate) } : {}),
      })
      .then((k) => {
        notices.ok(`Created key ${k.id}. The key is shown once: copy it now.`, k.key);
        setForm({ description: '', scopes: ['send'], domain: '', rate: '' });
        reload();
      }, notices.fail)
      .finally(() => setBusy(false));
  };
  const revoke = async (k: ApiKey) => {
    if (!(await confirm(`Revoke key ${k.id}${k.description ? ` (${k.description})` : ''}? Clients using it are refused at once.`, 'Revoke'))) return;
    api.delete(`/keys/${seg(k.id)}`).then(() => {
      notices.ok(`Revoked key ${k.id}.`);
      reload();
    }, notices.fail);
  };

  const keys = sessions ? data : data?.filter((k) => !k.description.startsWith(SESSION_PREFIX));
  return (
    <Page title="API keys" notices={notices}>
      <section class="panel" aria-labelledby="new-key">
        <h2 id="new-key">New key</h2>
        <form class="grid-form" onSubmit={create}>
          <label>
            Description
            <input value={form.description} onInput={(e) => set({ description: e.currentTarget.value })} maxLength={500} />
          </label>
          <fieldset>
            <legend>Scopes</legend>
            {SCOPES.map((s) => (
              <label class="check" key={s}>
                <input
                  type="checkbox"
                  checked={form.scopes.includes(s)}
                  onChange={(e) => set({ scopes: e.currentTarget.checked ? [...form.scopes, s] : form.scopes.filter((x) => x !== s) })}
                />
                {s}
              </label>
            ))}
          </fieldset>
          <label>
            Domain
            <input value={form.domain} onInput={(e) => set({ domain: e.currentTarget.value })} aria-describedby="key-domain-hint" spellcheck={false} />
          </label>
          <p id="key-domain-hint" class="muted small">
            Optional: a key limited to one domain manages and sends for that domain only.
          </p>
          <label>
            Requests per minute
            <input type="number" min="1" step="1" value={form.rate} onInput={(e) => set({ rate: e.currentTarget.value })} aria-describedby="key-rate-hint" />
          </label>
          <p id="key-rate-hint" class="muted small">
            Optional: empty for the server's default.
          </p>
          <button disabled={busy}>Create key</button>
        </form>
      </section>
      <label class="check">
        <input type="checkbox" checked={sessions} onChange={(e) => setSessions(e.currentTarget.checked)} />
        Show portal sessions
      </label>
      <ListTable
        label="API keys"
        rows={keys}
        empty="No API keys yet."
        columns={['ID', 'Description', 'Scopes', 'Domain', 'Created', 'Last used', 'Status']}
        row={(k) => (
          <tr key={k.id}>
            <th scope="row" class="mono">
              {k.id}
            </th>
            <td>{k.description || '—'}</td>
            <td>{k.scopes.join(', ')}</td>
            <td>{k.domain ?? 'all'}</td>
            <td>{formatTime(k.createdAt)}</td>
            <td>{formatTime(k.lastUsedAt)}</td>
            <td class="actions">
              {k.revokedAt ? (
                <span class="muted">revoked {formatTime(k.revokedAt)}</span>
              ) : (
                <button type="button" class="small danger" onClick={() => void revoke(k)}>
                  Revoke
                </button>
              )}
            </td>
          </tr>
        )}
      />
      {dialog}
    </Page>
  );
}
