// The frame of every page: the title bar with navigation and the live-connection indicator.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { onConnection, type Connection } from '../events';
import { ago, dateTime } from '../format';
import { signOut, useSession } from '../session';

// Who is signed in, with Sign out; or Sign in when the server offers it and nobody is.
function Who() {
  const session = useSession();
  if (!session || session.mode === 'none') return null;
  if (session.user) {
    return (
      <span class="who" data-user={session.user} data-role={session.role}>
        <b>{session.user}</b> <span class="muted">({session.role})</span>{' '}
        {session.via === 'session' && (
          <button type="button" name="sign-out" onClick={() => void signOut()}>
            Sign out
          </button>
        )}
      </span>
    );
  }
  if (!session.login_url) return null;
  const provider = session.provider === 'gitlab' ? 'GitLab' : 'GitHub';
  return (
    <span class="who">
      <button
        type="button"
        name="sign-in"
        onClick={() => {
          location.href = session.login_url!;
        }}
      >
        Sign in with {provider}
      </button>
    </span>
  );
}

export function Layout({ children }: { children: ComponentChildren }) {
  const [connection, setConnection] = useState<Connection>('connecting');
  useEffect(() => onConnection(setConnection), []);
  return (
    <div class="app">
      <header class="top">
        <a class="brand" href="/">
          TestLooper
        </a>
        <nav>
          <a href="/">Repos</a>
          <a href="/workers">Workers</a>
          <a href="/machines">Machines</a>
          <a href="/deployments">Deployments</a>
        </nav>
        <Who />
        <span class={`conn conn-${connection}`} data-connection={connection}>
          {connection === 'live' ? 'live' : connection === 'down' ? 'reconnecting…' : 'connecting…'}
        </span>
      </header>
      <main>{children}</main>
    </div>
  );
}

export function Crumbs({ items }: { items: Array<[string, string | null]> }) {
  return (
    <div class="crumbs">
      {items.map(([label, href], i) => (
        <span key={i}>
          {i > 0 && <span class="sep">/</span>}
          {href ? <a href={href}>{label}</a> : <b>{label}</b>}
        </span>
      ))}
    </div>
  );
}

export function Problem({ error }: { error: string | null }) {
  return error ? <div class="problem">{error}</div> : null;
}

// "Loading …" until the data comes; nothing once loading failed (its Problem says why), so a page
// of something that does not exist ends instead of loading forever.
export function Loading({ what, error }: { what: string; error?: string | null }) {
  if (error) return null;
  return <div class="loading">Loading {what}…</div>;
}

// The page's title (document.title): what it shows, then the app's name.
export function useTitle(...parts: Array<string | null | undefined>): void {
  const title = [...parts.filter((p): p is string => !!p), 'TestLooper'].join(' · ');
  useEffect(() => {
    document.title = title;
  }, [title]);
}

// A time as "3h ago", with the date in the one format of the UI on hover.
export function When({ t, now }: { t: number; now?: number }) {
  if (!t) return null;
  return (
    <time class="when" dateTime={new Date(t * 1000).toISOString()} title={dateTime(t)}>
      {ago(t, now)}
    </time>
  );
}
