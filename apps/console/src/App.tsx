import { Suspense, useState, type FormEvent } from 'react';
import { Link, Redirect, Route, Router, Switch } from 'wouter';
import { useHashLocation } from 'wouter/use-hash-location';
import { roleAtLeast, SessionProvider, useSession } from './auth';
import { ROUTES, SCREENS } from './screens';

export function App() {
  return (
    <SessionProvider>
      <Router hook={useHashLocation}>
        <Shell />
      </Router>
    </SessionProvider>
  );
}

function Shell() {
  const { who, error } = useSession();
  if (who === undefined) return <p className="loading">Connecting to the hub…</p>;
  if (who === null) return <SignIn error={error} />;
  const visible = SCREENS.filter((s) => roleAtLeast(who.role, s.role));
  const routes = [...SCREENS, ...ROUTES].filter((s) => roleAtLeast(who.role, s.role));
  return (
    <div className="shell">
      <header>
        <span className="brand">ShelfSight</span>
        <nav>
          {visible.map((s) => (
            <Link key={s.path} href={s.path} className={(active: boolean) => (active ? 'active' : '')}>
              {s.title}
            </Link>
          ))}
        </nav>
        <Who />
      </header>
      {who.anonymous && (
        <p className="banner" role="status">
          Read-only demo: you are not signed in. Sign in with an operator or admin key to change anything.
        </p>
      )}
      <main>
        <Suspense fallback={<p className="loading">Loading…</p>}>
          <Switch>
            {routes.map((s) => (
              <Route key={s.path} path={s.path} component={s.component} />
            ))}
            <Route>
              <Redirect to={visible[0]?.path ?? '/'} />
            </Route>
          </Switch>
        </Suspense>
      </main>
    </div>
  );
}

function Who() {
  const { who, signOut } = useSession();
  const [open, setOpen] = useState(false);
  if (!who) return null;
  if (who.anonymous) {
    return (
      <div className="who">
        {open ? <SignInForm onDone={() => setOpen(false)} /> : <button onClick={() => setOpen(true)}>Sign in</button>}
      </div>
    );
  }
  return (
    <div className="who">
      <span data-testid="role">
        {who.id} ({who.role})
      </span>
      <button onClick={signOut}>Sign out</button>
    </div>
  );
}

function SignIn({ error }: { error: string | undefined }) {
  return (
    <div className="signin">
      <h1>ShelfSight</h1>
      <p>Sign in with an API key (ask an admin for one: <code>shelf key create --role viewer</code>).</p>
      <SignInForm />
      {error && <p className="error">{error}</p>}
    </div>
  );
}

function SignInForm({ onDone }: { onDone?: () => void }) {
  const { signIn } = useSession();
  const [key, setKey] = useState('');
  const [failed, setFailed] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const ok = await signIn(key);
    setFailed(!ok);
    if (ok) onDone?.();
  };
  return (
    <form onSubmit={submit} className="signin-form">
      <input type="password" aria-label="API key" placeholder="API key" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} />
      <button type="submit" disabled={!key.trim()}>
        Sign in
      </button>
      {failed && <span className="error">That key was refused.</span>}
    </form>
  );
}
