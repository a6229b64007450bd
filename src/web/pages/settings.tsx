/** Site settings: one row per setting the server lists; Save stores a value (PUT), or removes it when emptied (DELETE). */
import { useState } from 'preact/hooks';
import { api, ApiError, seg } from '../api';
import { Page, useLoad, useNotice, type Notices } from '../components';

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
