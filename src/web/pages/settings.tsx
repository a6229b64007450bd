/**
 * Site settings: one row per setting the server lists; Save stores a value (PUT), or removes it when emptied (DELETE).
 * Then the per-destination policy of outbound mail: routes and rate limits.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, seg } from '../api';
import { ListTable, Page, useConfirm, useLoad, useNotice, type Notices } from '../components';

interface Setting {
  key: string;
  value: string | null;
  description: string;
  unset: string;
  flag: string | null;
  takesEffect: 'start' | 'minute';
}

export function Settings() {
  const notices = useNotice();
  const { data } = useLoad(() => api.get<Setting[]>('/settings'), [], notices);
  // The row whose last save failed, marked aria-invalid.
  const [invalid, setInvalid] = useState<string | null>(null);
  return (
    <Page title="Settings" notices={notices}>
      <p class="muted">Empty a value and save it to go back to what applies when it is not set.</p>
      {data?.map((s) => (
        <SettingRow key={s.key} setting={s} notices={notices} invalid={invalid === s.key} setInvalid={setInvalid} />
      ))}
      <Destinations
        title="Routes"
        path="/routes"
        nameLabel="Destination domain"
        valueLabel="Host:port"
        button="Add route"
        hint="Mail for the domain goes to this host instead of its MX hosts (before the smarthost). Applies within 30 s."
        read={(r: { domain: string; target: string }) => [r.domain, r.target]}
        body={(v) => ({ target: v })}
        notices={notices}
      />
      <Destinations
        title="Rate limits"
        path="/rate-limits"
        nameLabel="Destination domain or MX host"
        valueLabel="Messages a minute"
        button="Set limit"
        hint="At most this many messages a minute to the destination, over all its connections; the rest wait. Applies within 30 s."
        read={(r: { destination: string; perMinute: number }) => [r.destination, String(r.perMinute)]}
        body={(v) => ({ perMinute: Number(v) })}
        numeric
        notices={notices}
      />
    </Page>
  );
}

function SettingRow(props: { setting: Setting; notices: Notices; invalid: boolean; setInvalid: (key: string | null) => void }) {
  const [setting, setSetting] = useState(props.setting);
  const [value, setValue] = useState(setting.value ?? '');
  const [busy, setBusy] = useState(false);
  const { key } = setting;
  const id = `setting-${key}`;
  const when = setting.takesEffect === 'minute' ? 'Applies within a minute.' : 'Applies at the next start of tern serve.';

  const save = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const v = value.trim();
    const done = (s: Setting, text: string) => {
      setSetting(s);
      setValue(s.value ?? '');
      props.setInvalid(null);
      props.notices.ok(text);
    };
    const request =
      v === ''
        ? setting.value === null
          ? Promise.resolve(done(setting, `${key} is not set.`))
          : api.delete(`/settings/${seg(key)}`).then(
              () => done({ ...setting, value: null }, `${key} removed: ${setting.unset} applies. ${when}`),
              (err: unknown) => {
                // Not set on the server any more (removed elsewhere): that is what was asked.
                if (err instanceof ApiError && err.status === 404) done({ ...setting, value: null }, `${key} is not set.`);
                else throw err;
              },
            )
        : api.put<Setting>(`/settings/${seg(key)}`, { value: v }).then((s) => done(s, `${key} saved. ${when}`));
    request
      .catch((err: unknown) => {
        props.setInvalid(key);
        props.notices.fail(err);
      })
      .finally(() => setBusy(false));
  };

  return (
    <form class="setting" onSubmit={save}>
      <label for={id} class="mono">
        {key}
      </label>
      <div class="setting-input">
        <input
          id={id}
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
          placeholder={setting.unset}
          aria-describedby={`${id}-help`}
          aria-invalid={props.invalid}
          spellcheck={false}
          autocomplete="off"
        />
        <button disabled={busy}>Save</button>
      </div>
      <p id={`${id}-help`} class="muted small">
        {setting.description}. When not set: {setting.unset}. {when}
        {setting.flag && ` The ${setting.flag} option of tern serve overrides it.`}
      </p>
    </form>
  );
}

/** A list of per-destination values (routes, rate limits): one PUT per destination to add or change, DELETE to remove. */
function Destinations<T>(props: {
  title: string;
  path: string;
  nameLabel: string;
  valueLabel: string;
  button: string;
  hint: string;
  read: (row: T) => [name: string, value: string];
  body: (value: string) => unknown;
  numeric?: boolean;
  notices: Notices;
}) {
  const { notices } = props;
  const [dialog, confirm] = useConfirm();
  const { data, reload } = useLoad(() => api.get<T[]>(props.path), [], notices);
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const id = `dest-${props.path.slice(1)}`;
  const add = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    api
      .put<T>(`${props.path}/${seg(name.trim())}`, props.body(value.trim()))
      .then((row) => {
        const [n, v] = props.read(row);
        notices.ok(`${props.title}: ${n} → ${v}.`);
        setName('');
        setValue('');
        reload();
      }, notices.fail)
      .finally(() => setBusy(false));
  };
  const remove = async (n: string) => {
    if (!(await confirm(`Remove the ${props.title.toLowerCase().replace(/s$/, '')} of ${n}?`, 'Delete'))) return;
    api.delete(`${props.path}/${seg(n)}`).then(() => {
      notices.ok(`${props.title}: ${n} removed.`);
      reload();
    }, notices.fail);
  };
  return (
    <section aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{props.title}</h2>
      <form class="inline-form" onSubmit={add}>
        <label>
          {props.nameLabel}
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autocomplete="off" spellcheck={false} aria-describedby={`${id}-hint`} />
        </label>
        <label>
          {props.valueLabel}
          <input
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
            required
            autocomplete="off"
            spellcheck={false}
            {...(props.numeric ? { type: 'number', min: 1, step: 1 } : {})}
            aria-describedby={`${id}-hint`}
          />
        </label>
        <button disabled={busy}>{props.button}</button>
        <p id={`${id}-hint`} class="muted small">
          {props.hint}
        </p>
      </form>
      <ListTable
        label={props.title}
        rows={data?.map(props.read)}
        empty={<p class="muted">None.</p>}
        columns={[props.nameLabel, props.valueLabel]}
        actions
        row={([n, v]) => (
          <tr key={n}>
            <th scope="row">{n}</th>
            <td>{v}</td>
            <td class="actions">
              <button type="button" class="small danger" onClick={() => void remove(n)}>
                Delete
              </button>
            </td>
          </tr>
        )}
      />
      {dialog}
    </section>
  );
}
