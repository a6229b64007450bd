/** Local domains: the list (add, delete) and one domain's page (DNS records and their check, DKIM keys, inbound policy). */
import { useState } from 'preact/hooks';
import { api, seg } from '../api';
import { ListTable, CopyButton, formatTime, Page, Select, setFlash, TableBox, useConfirm, useLoad, useNotice } from '../components';
import { href, navigate } from '../router';

interface DnsRecord {
  type: string;
  name: string;
  value: string;
  note?: string;
}
interface DkimKey {
  selector: string;
  algorithm: string;
  state: string;
  createdAt: string;
  retireAt: string | null;
}
interface Domain {
  name: string;
  createdAt: string;
  dkim: DkimKey[];
  records: DnsRecord[];
}
interface DnsCheck {
  resolvers: string[];
  records: Array<DnsRecord & { found: string[]; status: 'ok' | 'missing' | 'different' | 'error'; error?: string }>;
}
interface Policy {
  dmarc?: 'enforce' | 'monitor';
  spf?: 'reject' | 'monitor';
  greylist?: boolean;
  mtaSts?: 'enforce' | 'testing' | 'none';
}

export function Domains() {
  const notices = useNotice();
  const [dialog, confirm] = useConfirm();
  const { data, reload } = useLoad(() => api.get<Array<{ name: string; createdAt: string }>>('/domains'), [], notices);
  const [name, setName] = useState('');
  const [dkim, setDkim] = useState('rsa');
  const [busy, setBusy] = useState(false);

  const add = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    api
      .post<Domain>('/domains', { name: name.trim(), dkim })
      .then((d) => {
        notices.ok(`Added ${d.name}. Publish its DNS records (on its page) before sending mail from it.`);
        setName('');
        reload();
      }, notices.fail)
      .finally(() => setBusy(false));
  };
  const remove = async (domain: string) => {
    if (!(await confirm(`Delete ${domain}? Its API keys are revoked. A domain still used by accounts or aliases is kept.`, 'Delete'))) return;
    api.delete(`/domains/${seg(domain)}`).then(() => {
      notices.ok(`Deleted ${domain}.`);
      reload();
    }, notices.fail);
  };

  return (
    <Page title="Domains" notices={notices}>
      <form class="inline-form" onSubmit={add}>
        <label>
          Domain name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autocomplete="off" spellcheck={false} />
        </label>
        <Select
          id="new-domain-dkim"
          label="DKIM keys"
          value={dkim}
          onChange={setDkim}
          options={[
            ['rsa', 'RSA'],
            ['ed25519', 'Ed25519'],
            ['both', 'RSA and Ed25519'],
            ['none', 'None'],
          ]}
        />
        <button disabled={busy}>Add domain</button>
      </form>
      <ListTable
        label="Domains"
        rows={data}
        empty="No domains yet."
        columns={['Domain', 'Added']}
        actions
        row={(d) => (
          <tr key={d.name}>
            <th scope="row">
              <a href={href('domains', d.name)}>{d.name}</a>
            </th>
            <td>{formatTime(d.createdAt)}</td>
            <td class="actions">
              <button type="button" class="danger" onClick={() => void remove(d.name)}>
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

export function DomainPage(props: { name: string }) {
  const notices = useNotice();
  const [dialog, confirm] = useConfirm();
  const path = `/domains/${seg(props.name)}`;
  const { data: domain, reload } = useLoad(() => api.get<Domain>(path), [path], notices);
  const [check, setCheck] = useState<DnsCheck | null>(null);
  const [checking, setChecking] = useState(false);
  const [algorithm, setAlgorithm] = useState('rsa');

  const checkDns = () => {
    setChecking(true);
    api
      .get<DnsCheck>(`${path}/dns-check`)
      .then((c) => {
        setCheck(c);
        const bad = c.records.filter((r) => r.status !== 'ok').length;
        notices.ok(bad ? `DNS checked: ${bad} of ${c.records.length} records are not published as shown.` : 'DNS checked: every record is published.');
      }, notices.fail)
      .finally(() => setChecking(false));
  };
  const rotate = () => {
    api.post<DkimKey>(`${path}/dkim`, { algorithm }).then((k) => {
      notices.ok(`New ${k.algorithm} DKIM key ${k.selector}: publish its record; it signs once the record is found, and the current key then retires.`);
      setCheck(null);
      reload();
    }, notices.fail);
  };
  const remove = async () => {
    if (!(await confirm(`Delete ${props.name}? Its API keys are revoked. A domain still used by accounts or aliases is kept.`, 'Delete'))) return;
    api.delete(path).then(() => {
      setFlash(`Deleted ${props.name}.`);
      navigate('domains');
    }, notices.fail);
  };

  // The check answers in the order of the records; a rotation since then makes it stale (cleared above).
  const status = (i: number) => check?.records[i];
  return (
    <Page
      title={props.name}
      notices={notices}
      actions={
        <a class="back" href={href('domains')}>
          All domains
        </a>
      }
    >
      {domain && (
        <>
          <section aria-labelledby="records-title">
            <div class="section-head">
              <h2 id="records-title">DNS records to publish</h2>
              <button type="button" onClick={checkDns} disabled={checking}>
                Check DNS
              </button>
            </div>
            {check && <p class="muted">Asked {check.resolvers.length ? check.resolvers.join(', ') : 'the system resolver'}.</p>}
            <TableBox label="DNS records" stack>
              <thead>
                <tr>
                  <th scope="col">Type</th>
                  <th scope="col">Name</th>
                  <th scope="col">Value</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span class="visually-hidden">Copy</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {domain.records.map((r, i) => {
                  const s = status(i);
                  return (
                    <tr key={`${r.type} ${r.name} ${i}`}>
                      <td data-label="Type">{r.type}</td>
                      <td class="mono" data-label="Name">
                        {r.name}
                      </td>
                      <td data-label="Value">
                        <code class="value">{r.value}</code>
                        {r.note && <div class="muted small">{r.note}</div>}
                      </td>
                      <td data-label="Status">
                        {s ? (
                          <>
                            <span class={`badge ${s.status}`}>{s.status}</span>
                            {s.status === 'different' && s.found.length > 0 && <div class="muted small">found: {s.found.join(' | ')}</div>}
                            {s.error && <div class="muted small">{s.error}</div>}
                          </>
                        ) : (
                          <span class="muted">not checked</span>
                        )}
                      </td>
                      <td class="actions">
                        <CopyButton text={r.value} label={`Copy ${r.type} record ${r.name}`} notices={notices} />
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </TableBox>
          </section>

          <section aria-labelledby="dkim-title">
            <h2 id="dkim-title">DKIM keys</h2>
            {domain.dkim.length === 0 ? (
              <p>No DKIM keys: mail from this domain is not signed.</p>
            ) : (
              <TableBox label="DKIM keys">
                <thead>
                  <tr>
                    <th scope="col">Selector</th>
                    <th scope="col">Algorithm</th>
                    <th scope="col">State</th>
                    <th scope="col">Created</th>
                    <th scope="col">Retires</th>
                  </tr>
                </thead>
                <tbody>
                  {domain.dkim.map((k) => (
                    <tr key={k.selector}>
                      <td class="mono">{k.selector}</td>
                      <td>{k.algorithm}</td>
                      <td>{k.state}</td>
                      <td>{formatTime(k.createdAt)}</td>
                      <td>{formatTime(k.retireAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </TableBox>
            )}
            <div class="inline-form">
              <Select
                id="dkim-algorithm"
                label="Algorithm"
                value={algorithm}
                onChange={setAlgorithm}
                options={[
                  ['rsa', 'RSA'],
                  ['ed25519', 'Ed25519'],
                ]}
              />
              <button type="button" onClick={rotate}>
                Rotate DKIM key
              </button>
            </div>
          </section>

          <PolicyForm path={path} notices={notices} onSaved={reload} />

          <section aria-labelledby="danger-title">
            <h2 id="danger-title">Remove the domain</h2>
            <button type="button" class="danger" onClick={() => void remove()}>
              Delete domain
            </button>
          </section>
        </>
      )}
      {dialog}
    </Page>
  );
}

/** What the MX enforces for mail to the domain; only the fields the server reports are shown and sent. */
function PolicyForm(props: { path: string; notices: ReturnType<typeof useNotice>; onSaved: () => void }) {
  const { data } = useLoad(() => api.get<Policy>(`${props.path}/policy`), [props.path], props.notices);
  const [edited, setPolicy] = useState<Policy | null>(null);
  const policy = edited ?? data;
  if (!policy) return null;
  const save = (e: Event) => {
    e.preventDefault();
    api.patch<Policy>(`${props.path}/policy`, policy).then((p) => {
      setPolicy(p);
      props.notices.ok('Inbound policy saved; the MX applies it within seconds.');
      // The MTA-STS mode decides which DNS records to publish.
      props.onSaved();
    }, props.notices.fail);
  };
  const choice = <K extends 'dmarc' | 'spf' | 'mtaSts'>(key: K, label: string, options: Array<NonNullable<Policy[K]>>) =>
    policy[key] !== undefined && (
      <Select
        id={`policy-${key}`}
        label={label}
        value={policy[key]}
        onChange={(v) => setPolicy({ ...policy, [key]: v })}
        options={options.map((o) => [o, o])}
      />
    );
  return (
    <section aria-labelledby="policy-title">
      <h2 id="policy-title">Inbound policy</h2>
      <form class="inline-form" onSubmit={save}>
        {choice('dmarc', "Sender's DMARC policy", ['enforce', 'monitor'])}
        {choice('spf', 'SPF failures', ['reject', 'monitor'])}
        {choice('mtaSts', 'MTA-STS', ['enforce', 'testing', 'none'])}
        {policy.greylist !== undefined && (
          <label class="check">
            <input type="checkbox" checked={policy.greylist} onChange={(e) => setPolicy({ ...policy, greylist: e.currentTarget.checked })} />
            Greylisting
          </label>
        )}
        <button>Save policy</button>
      </form>
    </section>
  );
}
