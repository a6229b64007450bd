/** The sign-in form (admin accounts only). `message` is why it is shown, e.g. "Your session expired". */
import { useEffect, useState } from 'preact/hooks';
import { messageOf, signIn, type Session } from '../api';

export function Login(props: { message: string | null; onSignedIn: (s: Session) => void }) {
  const [error, setError] = useState(props.message);
  const [busy, setBusy] = useState(false);
  const [address, setAddress] = useState('');
  const [password, setPassword] = useState('');
  useEffect(() => {
    document.title = 'Sign in · Tern';
  }, []);
  // A message that comes after the form is shown (a failed sign-out).
  useEffect(() => setError(props.message), [props.message]);

  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    signIn(address.trim(), password).then(props.onSignedIn, (err: unknown) => {
      setBusy(false);
      setError(messageOf(err));
    });
  };

  return (
    <main class="login" id="main">
      <form onSubmit={submit}>
        <h1>Tern admin</h1>
        <div aria-live="polite">
          {error && (
            <div role="alert" class="notice error">
              <p>{error}</p>
            </div>
          )}
        </div>
        <label>
          Address
          <input
            name="address"
            value={address}
            onInput={(e) => setAddress(e.currentTarget.value)}
            autocomplete="username"
            inputMode="email"
            spellcheck={false}
            required
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            autocomplete="current-password"
            required
          />
        </label>
        <button disabled={busy}>Sign in</button>
      </form>
    </main>
  );
}
