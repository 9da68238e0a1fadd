import { isLedgerError } from '@interactionledger/client';
import { useFeed, useLiveUpdates, useToggleInteraction, useWhoLiked } from '@interactionledger/client/react';
import { useEffect, useState, type FormEvent } from 'react';
import { clearError, reportError, reportLoadError, useErrorMessage } from './errors';
import { signOut, type Identity } from './identity';

/** ARTICLES are the demo's sample articles, a-1 … a-12. */
export const ARTICLES = Array.from({ length: 12 }, (_, i) => ({
  id: `a-${i + 1}`,
  title: [
    'Why the un-like came back', 'Events, not flags', 'Positions make freshness explicit', 'Read your writes',
    'Rebuilding a read model', 'Idempotency keys in practice', 'Optimistic updates done right', 'The last click wins',
    'Server-sent events for counts', 'Soft deletes considered harmful', 'An append-only log on SQLite', 'Testing in a real browser',
  ][i],
}));
const TARGETS = ARTICLES.map((a) => `article/${a.id}`);

/** App is the demo page: the acting user, the error line and the articles. */
export function App({ identity }: { identity: Identity }) {
  const error = useErrorMessage();
  return (
    <main>
      <header>
        <h1>Interaction Ledger demo</h1>
        <p className="lede">
          Likes and collects recorded as events. Click fast, cancel, reload: the page shows what the ledger holds.
        </p>
        {identity.user ? <SignedIn identity={identity} /> : <ChooseUser problem={identity.problem} />}
      </header>
      {error && (
        <div role="alert" className="alert">
          {error}
          <button type="button" className="dismiss" aria-label="Dismiss" onClick={() => reportError(null)}>
            ×
          </button>
        </div>
      )}
      {identity.user && <Articles user={identity.user} />}
    </main>
  );
}

function SignedIn({ identity }: { identity: Identity }) {
  return (
    <p className="who">
      Acting as <strong data-user={identity.user}>{identity.user}</strong>
      {identity.token ? ' (from the token)' : ' (open mode)'}.{' '}
      {identity.token ? (
        <button type="button" className="link" onClick={() => { signOut(); window.location.reload(); }}>
          Forget the token
        </button>
      ) : (
        <a href="/">Change user</a>
      )}
    </p>
  );
}

function ChooseUser({ problem }: { problem: string | null }) {
  const [user, setUser] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const url = new URL(window.location.href);
    url.searchParams.set('user', user.trim());
    window.location.assign(url);
  };
  return (
    <form className="choose" onSubmit={submit}>
      {problem && <p role="alert" className="alert">{problem}</p>}
      <label>
        Act as user <input name="user" value={user} onChange={(e) => setUser(e.target.value)} required pattern="[A-Za-z0-9._:@\-]{1,128}" placeholder="u42" />
      </label>{' '}
      <button type="submit">Open</button>
      <p className="hint">Open mode (loopback, no tokens): any user id. With tokens configured, open this page with <code>?token=&lt;JWT&gt;</code>; the page acts as its subject.</p>
    </form>
  );
}

function Articles({ user }: { user: string }) {
  const feed = useFeed(TARGETS, user);
  const [liveFrom, setLiveFrom] = useState<number | null>(null);
  const [live, setLive] = useState(false);
  const [liveOff, setLiveOff] = useState<string | null>(null);
  useEffect(() => {
    if (feed.data && liveFrom === null) setLiveFrom(feed.data.position);
  }, [feed.data, liveFrom]);
  useEffect(() => {
    if (feed.error) reportLoadError('Could not load the articles', feed.error);
    else if (feed.isSuccess) clearError('Could not load the articles');
  }, [feed.error, feed.isSuccess, feed.dataUpdatedAt]);
  useLiveUpdates({
    enabled: liveFrom !== null,
    after: liveFrom ?? undefined,
    targets: TARGETS, // the articles this page shows, not the whole site's events
    onOpen: () => setLive(true),
    onClose: () => setLive(false),
    onError: (err, permanent) => {
      setLive(false);
      if (permanent) setLiveOff(isLedgerError(err) ? err.detail : String(err));
    },
  });

  if (feed.isPending) return <p aria-busy="true">Loading articles…</p>;
  if (!feed.data) return null;
  return (
    <>
      <p className="status" data-live={live}>
        {live ? 'Live: counts update as others click.' : liveOff ? `Live updates are off: ${liveOff}` : 'Connecting to live updates…'}
      </p>
      <ul className="articles">
        {ARTICLES.map((a, i) => (
          <ArticleCard key={a.id} id={a.id} title={a.title} user={user} view={feed.data.items[i]} />
        ))}
      </ul>
    </>
  );
}

interface View {
  counts: Record<string, number>;
  viewer?: Record<string, boolean>;
}

function ArticleCard({ id, title, user, view }: { id: string; title: string; user: string; view: View }) {
  return (
    <li data-target={`article/${id}`} className="article">
      <h2>{title}</h2>
      <p className="meta">article/{id}</p>
      <div className="actions">
        <ToggleButton id={id} kind="like" label="Like" user={user} view={view} />
        <ToggleButton id={id} kind="collect" label="Collect" user={user} view={view} />
      </div>
      <WhoLiked id={id} />
    </li>
  );
}

function ToggleButton({ id, kind, label, user, view }: { id: string; kind: string; label: string; user: string; view: View }) {
  const { toggle } = useToggleInteraction(`article/${id}`, kind, user);
  const pressed = view.viewer?.[kind] ?? false;
  // A failed click is reported by the mutation cache (main.tsx), which
  // outlives this button.
  const onClick = () => toggle();
  return (
    <span className="toggle">
      <button type="button" data-kind={kind} aria-pressed={pressed} onClick={onClick}>
        {label}
      </button>
      <span data-count={kind}>{view.counts[kind] ?? 0}</span>
    </span>
  );
}

function WhoLiked({ id }: { id: string }) {
  const who = useWhoLiked(`article/${id}`, 'like', 5);
  if (who.error && !isLedgerError(who.error, 401)) return <p className="who-liked">Could not load who liked it.</p>;
  const users = who.data?.pages.flatMap((p) => p.items.map((i) => i.user)) ?? [];
  return (
    <div className="who-liked" data-who="like">
      <span>Liked by: </span>
      {users.length === 0 ? <span className="none">nobody yet</span> : (
        <ul>{users.map((u) => <li key={u}>{u}</li>)}</ul>
      )}
      {who.hasNextPage && (
        <button type="button" className="link" disabled={who.isFetchingNextPage} onClick={() => void who.fetchNextPage()}>
          more
        </button>
      )}
    </div>
  );
}
