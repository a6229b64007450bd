/** The portal: the session check, the sign-in form or the layout (navigation, theme, sign out) around the current page. */
import type { FunctionComponent } from 'preact';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { currentSession, messageOf, signOut, whenSessionLost, type Session } from './api';
import { Accounts } from './pages/accounts';
import { Aliases } from './pages/aliases';
import { Dashboard, forgetStats } from './pages/dashboard';
import { DomainPage, Domains } from './pages/domains';
import { Keys } from './pages/keys';
import { Login } from './pages/login';
import { Queue } from './pages/queue';
import { Settings } from './pages/settings';
import { Trace } from './pages/trace';
import { Webhooks } from './pages/webhooks';
import { href, useRoute } from './router';
import './styles.css';

const PAGES: Array<{ path: string; name: string; page: FunctionComponent }> = [
  { path: 'dashboard', name: 'Dashboard', page: Dashboard },
  { path: 'domains', name: 'Domains', page: Domains },
  { path: 'accounts', name: 'Accounts', page: Accounts },
  { path: 'aliases', name: 'Aliases', page: Aliases },
  { path: 'keys', name: 'API keys', page: Keys },
  { path: 'webhooks', name: 'Webhooks', page: Webhooks },
  { path: 'queue', name: 'Queue', page: Queue },
  { path: 'trace', name: 'Trace', page: Trace },
  { path: 'settings', name: 'Settings', page: Settings },
];

// Theme: "system" follows prefers-color-scheme (styles.css); light or dark is stored and set on <html data-theme>.
type Theme = 'system' | 'light' | 'dark';
const THEME_KEY = 'tern-theme';
function storedTheme(): Theme {
  try {
    const t = localStorage.getItem(THEME_KEY);
    return t === 'light' || t === 'dark' ? t : 'system';
  } catch {
    return 'system';
  }
}
function applyTheme(theme: Theme): void {
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  try {
    if (theme === 'system') localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, theme);
  } catch {
    // Storage refused (private mode): the choice lasts until the page is reloaded.
  }
  // The dashboard's charts draw with the theme's colours and listen for this.
  dispatchEvent(new Event('tern-theme'));
}
applyTheme(storedTheme());

function ThemeButton() {
  const [theme, setTheme] = useState(storedTheme);
  const next = () => {
    const t: Theme = theme === 'system' ? 'light' : theme === 'light' ? 'dark' : 'system';
    applyTheme(t);
    setTheme(t);
  };
  return (
    <button type="button" class="small" aria-label="Theme" aria-describedby="theme-mode" onClick={next}>
      Theme
      <span class="mode">
        : <span id="theme-mode">{theme}</span>
      </span>
    </button>
  );
}

function App() {
  // undefined: still asking the server whether this browser has a session.
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [message, setMessage] = useState<string | null>(null);
  // A session that ended here (expired or signed out): the next sign-in starts on the dashboard, while a first
  // sign-in keeps the page the address asked for (a bookmark).
  const ended = useRef(false);
  useEffect(() => {
    whenSessionLost(() => {
      ended.current = true;
      forgetStats();
      setMessage('Your session expired. Sign in again.');
      setSession(null);
    });
    currentSession().then(setSession, (err: unknown) => {
      setMessage(messageOf(err));
      setSession(null);
    });
  }, []);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null)
    return (
      <Login
        message={message}
        onSignedIn={(s) => {
          if (ended.current) history.replaceState(null, '', href('dashboard'));
          setMessage(null);
          setSession(s);
        }}
      />
    );
  const out = () => {
    ended.current = true;
    forgetStats();
    signOut().then(
      () => setMessage(null),
      (err: unknown) => setMessage(`Signing out failed: ${messageOf(err)}`),
    );
    setSession(null);
  };
  return <Layout session={session} onSignOut={out} />;
}

function Layout(props: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const [menuOpen, setMenuOpen] = useState(false);
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  const [section, detail] = route;
  const current = PAGES.find((p) => p.path === section) ?? PAGES[0]!;
  const Content = current.page;

  // After a route change, focus the new page's heading: keyboard and screen reader users start on the new page.
  useEffect(() => {
    setMenuOpen(false);
    if (first.current) first.current = false;
    else main.current?.querySelector('h1')?.focus();
  }, [route.join('/')]);

  return (
    <div class="layout">
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          // A plain #main would be taken for a route.
          e.preventDefault();
          main.current?.querySelector('h1')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Tern</span>
        <button type="button" class="menu small" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <div class="account">
          <span class="who">{props.session.address}</span>
          <ThemeButton />
          <button type="button" class="small" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <nav id="main-nav" aria-label="Main" class={menuOpen ? 'open' : ''}>
        <ul>
          {PAGES.map((p) => (
            <li key={p.path}>
              <a href={href(p.path)} aria-current={p === current ? 'page' : undefined}>
                {p.name}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" ref={main}>
        {section === 'domains' && detail ? <DomainPage key={detail} name={detail} /> : <Content key={current.path} />}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
