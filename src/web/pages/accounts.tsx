/** Accounts: search and pages of 50 (the total from X-Total-Count), quota use, create, reset password, delete. */
import { useState } from 'preact/hooks';
import { api, seg } from '../api';
import { formatBytes, formatTime, Page, TableBox, useConfirm, useDebounced, useLoad, useNotice } from '../components';

interface Account {
  address: string;
  admin: boolean;
  quotaBytes: number | null;
  usedBytes: number;
  messages: number;
  createdAt: string;
  password?: string;
}

const PAGE_SIZE = 50;
const MB = 1024 * 1024;

export function Accounts() {
  const notices = useNotice();
  const [dialog, confirm] = useConfirm();
  const [search, setSearch] = useState('');
  const query = useDebounced(search.trim());
  const [offset, setOffset] = useState(0);
  const { data, loading, reload } = useLoad(() => api.page<Account>('/accounts', { search: query, limit: PAGE_SIZE, offset }), [query, offset], notices);

  const resetPassword = (address: string) => {
    api
      .post<{ address: string; password: string }>(`/accounts/${seg(address)}/reset-password`)
      .then((r) => notices.ok(`New password for ${r.address}, shown once: copy it now.`, r.password), notices.fail);
  };
  const remove = async (address: string) => {
    if (!(await confirm(`Delete ${address} with all its mailboxes and messages? This cannot be undone.`, 'Delete'))) return;
    api.delete(`/accounts/${seg(address)}`).then(() => {
      notices.ok(`Deleted ${address}.`);
      reload();
    }, notices.fail);
  };

  const items = data?.items ?? [];
  // Without the header (an older server), a full page means there may be another one.
  const total = data?.total ?? (items.length === PAGE_SIZE ? offset + PAGE_SIZE + 1 : offset + items.length);
  return (
    <Page title="Accounts" notices={notices}>
      <CreateAccount notices={notices} onCreated={reload} />
      <div class="toolbar">
        <label>
          Search
          <input
            type="search"
            value={search}
            onInput={(e) => {
              setSearch(e.currentTarget.value);
              setOffset(0);
            }}
            placeholder="part of an address"
            spellcheck={false}
          />
        </label>
        <p class="muted" aria-live="polite">
          {loading ? 'Loading…' : items.length === 0 ? 'No accounts match.' : `${offset + 1}–${offset + items.length} of ${data?.total ?? 'more'}`}
        </p>
      </div>
      {items.length > 0 && (
        <TableBox label="Accounts">
          <thead>
            <tr>
              <th scope="col">Address</th>
              <th scope="col">Storage</th>
              <th scope="col">Messages</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((a) => (
              <tr key={a.address}>
                <th scope="row">
                  {a.address} {a.admin && <span class="badge">admin</span>}
                </th>
                <td>
                  <Quota account={a} />
                </td>
                <td>{a.messages.toLocaleString()}</td>
                <td>{formatTime(a.createdAt)}</td>
                <td class="actions">
                  <button type="button" class="small" onClick={() => resetPassword(a.address)}>
                    Reset password
                  </button>
                  <button type="button" class="small danger" onClick={() => void remove(a.address)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </TableBox>
      )}
      <div class="pager">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
          Previous
        </button>
        <button type="button" disabled={offset + PAGE_SIZE >= total} onClick={() => setOffset(offset + PAGE_SIZE)}>
          Next
        </button>
      </div>
      {dialog}
    </Page>
  );
}

/** Storage used, as a bar against the quota (none without a quota). */
function Quota(props: { account: Account }) {
  const { usedBytes: used, quotaBytes: quota, address } = props.account;
  if (quota === null) return <span>{formatBytes(used)} (no quota)</span>;
  const percent = quota === 0 ? 100 : Math.min(100, Math.round((used / quota) * 100));
  const text = `${formatBytes(used)} of ${formatBytes(quota)}`;
  return (
    <div class="quota">
      <div
        class={`meter${percent >= 90 ? ' full' : ''}`}
        role="meter"
        aria-label={`Storage used by ${address}`}
        aria-valuemin={0}
        aria-valuemax={quota}
        aria-valuenow={Math.min(used, quota)}
        aria-valuetext={`${text} (${percent}%)`}
      >
        <div style={{ width: `${percent}%` }} />
      </div>
      <span class="small">{text}</span>
    </div>
  );
}

function CreateAccount(props: { notices: ReturnType<typeof useNotice>; onCreated: () => void }) {
  const [form, setForm] = useState({ address: '', password: '', quota: '', admin: false });
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const quota = form.quota.trim();
    api
      .post<Account>('/accounts', {
        address: form.address.trim(),
        ...(form.password ? { password: form.password } : {}),
        ...(quota ? { quotaBytes: Math.round(Number(quota) * MB) } : {}),
        admin: form.admin,
      })
      .then((a) => {
        if (a.password) props.notices.ok(`Created ${a.address}. Its generated password is shown once: copy it now.`, a.password);
        else props.notices.ok(`Created ${a.address}.`);
        setForm({ address: '', password: '', quota: '', admin: false });
        props.onCreated();
      }, props.notices.fail)
      .finally(() => setBusy(false));
  };
  return (
    <section class="panel" aria-labelledby="new-account">
      <h2 id="new-account">New account</h2>
      <form class="grid-form" onSubmit={submit}>
        <label>
          Address
          <input value={form.address} onInput={(e) => set({ address: e.currentTarget.value })} required autocomplete="off" spellcheck={false} />
        </label>
        <label>
          Password
          <input
            type="password"
            value={form.password}
            onInput={(e) => set({ password: e.currentTarget.value })}
            autocomplete="new-password"
            aria-describedby="password-hint"
            minLength={8}
          />
        </label>
        <p id="password-hint" class="muted small">
          Optional: leave empty to generate one.
        </p>
        <label>
          Quota (MB)
          <input
            type="number"
            min="0"
            step="any"
            inputMode="decimal"
            value={form.quota}
            onInput={(e) => set({ quota: e.currentTarget.value })}
            aria-describedby="quota-hint"
          />
        </label>
        <p id="quota-hint" class="muted small">
          Optional: empty for no quota.
        </p>
        <label class="check">
          <input type="checkbox" checked={form.admin} onChange={(e) => set({ admin: e.currentTarget.checked })} />
          Administrator
        </label>
        <button disabled={busy}>Create account</button>
      </form>
    </section>
  );
}
