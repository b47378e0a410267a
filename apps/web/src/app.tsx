import { FormEvent, useEffect, useState } from 'react';
import { api, ApiError, onUnauthorized, setCsrfToken, unwrap } from './api';
import { ErrorNote } from './components';
import { closeLive, watchConnection } from './live';
import { matchRoute, Route } from './logic/routes';
import { Link, navigate, useLocation } from './nav';
import { Session, SessionContext } from './session';
import { AdminView } from './views/admin';
import { AuditView } from './views/audit';
import { DeviceView } from './views/device';
import { DevicesView } from './views/devices';
import { FleetView } from './views/fleet';
import { ReleasesView } from './views/releases';
import { RolloutView } from './views/rollout';
import { RolloutCreateView } from './views/rollout-create';
import { RolloutsView } from './views/rollouts';

function Login({ onSession }: { onSession(session: Session): void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<Error | undefined>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      // the token goes in the body of one POST; the browser keeps only the HttpOnly session cookie
      const session = await unwrap(api.POST('/api/v1/session', { body: { token: token.trim() } }));
      setToken('');
      onSession(session);
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <main className="login">
      <form onSubmit={submit} className="card">
        <h1>cowroot fleet</h1>
        <label>
          API token
          <input
            type="password"
            autoComplete="off"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            placeholder="cwr_…"
            required
            autoFocus
          />
        </label>
        <ErrorNote error={error} />
        <button type="submit" className="primary">
          Log in
        </button>
      </form>
    </main>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'fleet':
      return <FleetView />;
    case 'rollouts':
      return <RolloutsView />;
    case 'rollout-new':
      return <RolloutCreateView />;
    case 'rollout':
      return <RolloutView id={route.id} />;
    case 'devices':
      return <DevicesView />;
    case 'device':
      return <DeviceView id={route.id} />;
    case 'releases':
      return <ReleasesView />;
    case 'audit':
      return <AuditView />;
    case 'admin':
      return <AdminView />;
    default:
      return (
        <p>
          No such page. <Link href="/">Fleet overview</Link>
        </p>
      );
  }
}

const NAV: Array<{ href: string; label: string; admin?: boolean }> = [
  { href: '/', label: 'Fleet' },
  { href: '/rollouts', label: 'Rollouts' },
  { href: '/devices', label: 'Devices' },
  { href: '/releases', label: 'Releases' },
  { href: '/audit', label: 'Audit' },
  { href: '/admin', label: 'Admin', admin: true },
];

function Shell({ session, route, onLogout }: { session: Session; route: Route; onLogout(): void }) {
  const [live, setLive] = useState(false);
  const { pathname } = useLocation();
  useEffect(() => watchConnection(setLive), []);
  const section = '/' + (pathname.split('/')[1] ?? '');
  const adminOnly = route.page === 'admin' && session.role !== 'admin';
  return (
    <SessionContext.Provider value={session}>
      <header className="top">
        <Link href="/" className="brand">
          cowroot
        </Link>
        <nav aria-label="main">
          {NAV.filter((item) => !item.admin || session.role === 'admin').map((item) => (
            <Link key={item.href} href={item.href} aria-current={section === item.href ? 'page' : undefined}>
              {item.label}
            </Link>
          ))}
        </nav>
        <span
          className={live ? 'live on' : 'live'}
          title={live ? 'live updates connected' : 'live updates reconnecting'}
        >
          {live ? '● live' : '○ offline'}
        </span>
        <span className="who">
          {session.name} <span className="role">{session.role}</span>
        </span>
        <button type="button" onClick={onLogout}>
          Log out
        </button>
      </header>
      <main className="content">
        {adminOnly ? <p role="alert">Admin pages are for admins only.</p> : <Page route={route} />}
      </main>
    </SessionContext.Provider>
  );
}

export function App() {
  const { pathname } = useLocation();
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  useEffect(() => {
    onUnauthorized(() => {
      closeLive();
      setSession(null);
    });
    unwrap(api.GET('/api/v1/session')).then(
      (current) => {
        setCsrfToken(current.csrfToken);
        setSession(current);
      },
      (error: unknown) => {
        if (!(error instanceof ApiError) || error.status !== 401) console.error(error);
        setSession(null);
      },
    );
  }, []);
  if (session === undefined) return <p className="muted">Loading…</p>;
  if (session === null) {
    return (
      <Login
        onSession={(next) => {
          setCsrfToken(next.csrfToken);
          setSession(next);
          if (pathname === '/login') navigate('/', true);
        }}
      />
    );
  }
  const logout = async () => {
    await unwrap(api.DELETE('/api/v1/session')).catch(() => undefined);
    closeLive();
    setSession(null);
  };
  return <Shell session={session} route={matchRoute(pathname)} onLogout={logout} />;
}
