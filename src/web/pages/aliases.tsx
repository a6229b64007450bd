/** Aliases and catch-alls (@domain): one row per target. */
import { useState } from 'preact/hooks';
import { api, seg } from '../api';
import { ListTable, Page, useConfirm, useLoad, useNotice } from '../components';

interface AliasRow {
  address: string;
  target: string;
}

export function Aliases() {
  const notices = useNotice();
  const [dialog, confirm] = useConfirm();
  const { data, reload } = useLoad(() => api.get<AliasRow[]>('/aliases'), [], notices);
  const [source, setSource] = useState('');
  const [target, setTarget] = useState('');
  const [busy, setBusy] = useState(false);

  const add = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const targets = target.split(/[\s,]+/).filter(Boolean);
    api
      .post<{ source: string; targets: string[] }>('/aliases', { source: source.trim(), targets })
      .then((a) => {
        notices.ok(`Mail for ${a.source} now goes to ${a.targets.join(', ')}.`);
        setSource('');
        setTarget('');
        reload();
      }, notices.fail)
      .finally(() => setBusy(false));
  };
  const remove = async (row: AliasRow) => {
    if (!(await confirm(`Stop delivering mail for ${row.address} to ${row.target}?`, 'Delete'))) return;
    api.delete(`/aliases/${seg(row.address)}`, { target: row.target }).then(() => {
      notices.ok(`Deleted ${row.address} → ${row.target}.`);
      reload();
    }, notices.fail);
  };

  return (
    <Page title="Aliases" notices={notices}>
      <form class="inline-form" onSubmit={add}>
        <label>
          Alias
          <input
            value={source}
            onInput={(e) => setSource(e.currentTarget.value)}
            required
            autocomplete="off"
            spellcheck={false}
            aria-describedby="alias-hint"
          />
        </label>
        <label>
          Target
          <input
            value={target}
            onInput={(e) => setTarget(e.currentTarget.value)}
            required
            autocomplete="off"
            spellcheck={false}
            aria-describedby="alias-hint"
          />
        </label>
        <button disabled={busy}>Add alias</button>
        <p id="alias-hint" class="muted small">
          The alias is an address, or @domain for a catch-all (mail to any unknown address of the domain). Targets are local addresses, separated by commas.
        </p>
      </form>
      <ListTable
        label="Aliases"
        rows={data}
        empty="No aliases yet."
        columns={['Alias', 'Target']}
        actions
        row={(a) => (
          <tr key={`${a.address} ${a.target}`}>
            <th scope="row">
              {a.address} {a.address.startsWith('@') && <span class="badge">catch-all</span>}
            </th>
            <td>{a.target}</td>
            <td class="actions">
              <button type="button" class="small danger" onClick={() => void remove(a)}>
                Delete
              </button>
            </td>
          </tr>
        )}
      />
      {dialog}
    </Page>
  );
}
