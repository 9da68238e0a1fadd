// Who the demo acts as: ?user=ID in open (loopback, no-token) mode, or
// the subject of a JWT given once as ?token=... (kept in sessionStorage,
// then removed from the address bar so it does not linger in history).

const TOKEN_KEY = 'ledger-demo:token';
const USER_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/** usableUser reports whether s is a user id the server takes on writes: the id form, but not "." or ".." (no URL path can carry them). */
function usableUser(s: string): boolean {
  return USER_PATTERN.test(s) && s !== '.' && s !== '..';
}

/** Identity is the acting user and, when tokens are configured, the bearer token. */
export interface Identity {
  user: string | null;
  token: string | null;
  /** problem explains why the given user or token cannot be used. */
  problem: string | null;
}

/** subjectOf returns the "sub" claim of a JWT, or null when it has none. */
export function subjectOf(token: string): string | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === 'string' ? sub : null;
  } catch {
    return null;
  }
}

/** readIdentity reads the identity from the address and sessionStorage. */
export function readIdentity(): Identity {
  const url = new URL(window.location.href);
  const given = url.searchParams.get('token');
  if (given !== null) {
    sessionStorage.setItem(TOKEN_KEY, given);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url);
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    const sub = subjectOf(token);
    if (sub && usableUser(sub)) return { user: sub, token, problem: null };
    // Forgotten, so that the form below (?user=) can be used instead.
    signOut();
    return { user: null, token: null, problem: 'The token has no usable "sub" claim; it was forgotten.' };
  }
  const user = url.searchParams.get('user');
  if (user === null) return { user: null, token: null, problem: null };
  return usableUser(user)
    ? { user, token: null, problem: null }
    : { user: null, token: null, problem: `"${user}" is not a valid user id (letters, digits and . _ : @ -, at most 128; not "." or "..").` };
}

/** signOut forgets the token. */
export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}
