// The page's one error line: the latest failure of a write or a read,
// shown in the role="alert" element until the next successful write (or,
// for a failed load, until that view loads).
import { isDurableWrite, isLedgerError } from '@interactionledger/client';
import { useSyncExternalStore } from 'react';

let current: string | null = null;
const listeners = new Set<() => void>();

/** reportError shows what failed and why; null clears it. */
export function reportError(what: string | null, err?: unknown): void {
  current = what === null ? null : `${what}: ${describe(err)}`;
  listeners.forEach((l) => l());
}

/** clearError clears the error line when it starts with what (a view that failed has loaded). */
export function clearError(what: string): void {
  if (current?.startsWith(what)) reportError(null);
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
