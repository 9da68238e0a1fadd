// The page's error line: the latest failed click and a view that failed to
// load, shown in the role="alert" element. A click's failure stays until
// the next successful write (or a dismissal): a load failing after it (the
// feed's refetch that follows every settled click fails too while the
// server is unreachable) is shown beside it, not over it, and a view that
// loads again clears only its own line.
import { isDurableWrite, isLedgerError } from '@interactionledger/client';
import { useSyncExternalStore } from 'react';

let click: string | null = null;
let load: string | null = null;
let current: string | null = null;
const listeners = new Set<() => void>();

function publish(): void {
  const lines = [click, load].filter((l): l is string => l !== null);
  current = lines.length === 0 ? null : lines.join(' · ');
  listeners.forEach((l) => l());
}

/** reportError shows what failed and why (a click); null clears every line. */
export function reportError(what: string | null, err?: unknown): void {
  click = what === null ? null : `${what}: ${describe(err)}`;
  if (what === null) load = null;
  publish();
}

/** reportLoadError shows that a view failed to load, beside a click's failure. */
export function reportLoadError(what: string, err: unknown): void {
  load = `${what}: ${describe(err)}`;
  publish();
}

/** clearError clears the load line when it starts with what (a view that failed has loaded). */
export function clearError(what: string): void {
  if (load?.startsWith(what)) {
    load = null;
    publish();
  }
}

/**
 * reportToggleError reports a failed click from the mutation cache (every
 * toggle mutation's key is ['ledger', 'toggle', target, kind, user]): the
 * click's own button may be gone by then (a reset after the server's log
 * changed unmounts the cards), and its per-call callback with it.
 */
export function reportToggleError(key: readonly unknown[] | undefined, vars: unknown, err: unknown): void {
  if (key?.[0] !== 'ledger' || key[1] !== 'toggle') return;
  const id = String(key[2]).replace(/^article\//, '');
  const kind = String(key[3]);
  if (isDurableWrite(err)) {
    reportError(`Your ${kind} of ${id} is saved; the counts will catch up`, err);
    return;
  }
  const on = (vars as { on?: boolean } | undefined)?.on;
  if (!isLedgerError(err)) {
    // No answer, even to the client's resends: the server may have kept
    // the write (the connection dropped after its commit), so the page
    // does not call it undone; the refetch after the click shows the
    // server's state once it answers.
    reportError(`Could not confirm ${on ? '' : 'the undo of '}your ${kind} of ${id} (the page shows what the server holds once it answers)`, err);
    return;
  }
  reportError(`Could not ${on ? 'save' : 'undo'} your ${kind} of ${id}; it was undone`, err);
}

/** useErrorMessage is the message to show, or null. */
export function useErrorMessage(): string | null {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => current,
  );
}

function describe(err: unknown): string {
  if (isLedgerError(err)) {
    if (err.status === 401) return 'the server needs a token (add ?token=<JWT> to the address)';
    if (err.status === 429) return 'too many changes at once; the server asks to slow down';
    return `the server answered ${err.status}: ${err.detail}`;
  }
  return 'the server could not be reached';
}
