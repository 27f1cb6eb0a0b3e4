// Who is signed in (GET /api/session, docs/api.md "Sign-in and sessions"): the user and role the
// title bar shows, whether the controls that change something are shown, and the CSRF token
// every POST sends. Loaded once at start and again after signing out.
import { useEffect, useState } from 'preact/hooks';

export interface Session {
  mode: 'none' | 'token' | 'oauth';
  provider: string | null;
  login_url: string | null;
  user: string | null;
  role: 'anonymous' | 'viewer' | 'editor' | 'admin' | 'worker';
  via: string;
  csrf: string | null;
  public_read: boolean;
}

let current: Session | null = null;
const listeners = new Set<(s: Session | null) => void>();

function set(s: Session | null): void {
  current = s;
  for (const l of listeners) l(s);
}

export async function loadSession(): Promise<void> {
  try {
    const res = await fetch('/api/session', { headers: { Accept: 'application/json' } });
    set(res.ok ? ((await res.json()) as Session) : null);
  } catch {
    set(null);
  }
}

// The CSRF token POSTs carry (X-CSRF-Token), when signed in by cookie.
export function csrfToken(): string | null {
  return current?.csrf ?? null;
}

// Whether `s` may put branches under test, set targets and test sets, cancel and retry.
export function canEdit(s: Session | null): boolean {
  if (!s) return false;
  return s.mode === 'none' || s.role === 'editor' || s.role === 'admin';
}

export function useSession(): Session | null {
  const [s, setS] = useState<Session | null>(current);
  useEffect(() => {
    listeners.add(setS);
    setS(current);
    return () => void listeners.delete(setS);
  }, []);
  return s;
}

export async function signOut(): Promise<void> {
  const csrf = csrfToken();
  await fetch('/auth/logout', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(csrf ? { 'X-CSRF-Token': csrf } : {}) },
    body: '{}',
  });
  await loadSession();
}
