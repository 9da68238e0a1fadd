// The page's one error line: the latest failure of a write or a read,
// shown in the role="alert" element until the next successful write.
import { isLedgerError } from '@interactionledger/client';
import { useSyncExternalStore } from 'react';

let current: string | null = null;
const listeners = new Set<() => void>();

/** reportError shows what failed and why; null clears it. */
export function reportError(what: string | null, err?: unknown): void {
  current = what === null ? null : `${what}: ${describe(err)}`;
  listeners.forEach((l) => l());
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
