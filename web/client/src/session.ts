/** StorageLike is the part of the Web Storage API the client uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * SessionPosition keeps the highest ledger position this session's own
 * writes produced, in sessionStorage when there is one, so that reads
 * after a reload still ask for at least that position. It only moves
 * forward, within one log: it also keeps the id of the log the server
 * names (Ledger-Log), and a server that names another log (its log was
 * created anew) makes it forget the position, which was the old log's.
 */
export class SessionPosition {
  readonly #storage: StorageLike | null;
  readonly #key: string;
  #memory = 0;
  #log: string | null = null;

  /** constructor takes the storage (null: memory only) and the key to keep it under ("<key>:log" keeps the log). */
  constructor(storage: StorageLike | null, key: string) {
    this.#storage = storage;
    this.#key = key;
  }

  /** log returns the id of the log the position belongs to, null before any answer named one. */
  log(): string | null {
    return this.#log ?? this.#safeGet(`${this.#key}:log`);
  }

  /**
   * noteLog records the log an answer named. It returns true when the
   * session knew another log: the position, that log's, is forgotten.
   */
  noteLog(id: string): boolean {
    const known = this.log();
    if (known === id) return false;
    this.#log = id;
    if (known !== null) this.clear();
    this.#safeSet(`${this.#key}:log`, id);
    return known !== null;
  }

  /** get returns the highest position seen, 0 when none. */
  get(): number {
    const stored = Number(this.#safeGet(this.#key) ?? '0');
    return Math.max(this.#memory, Number.isSafeInteger(stored) && stored > 0 ? stored : 0);
  }

  /** note records position when it is higher than the one kept. */
  note(position: number): void {
    if (!Number.isSafeInteger(position) || position <= this.get()) return;
    this.#memory = position;
    this.#safeSet(this.#key, String(position));
  }

  #safeSet(key: string, value: string): void {
    try {
      this.#storage?.setItem(key, value);
    } catch {
      // Storage full or denied (private mode): the memory copy still holds
      // for this page's lifetime.
    }
  }

  /** clear forgets the position (e.g. on sign-out). */
  clear(): void {
    this.#memory = 0;
    try {
      this.#storage?.removeItem(this.#key);
    } catch {
      // Nothing kept to clear.
    }
  }

  #safeGet(key: string): string | null {
    try {
      return this.#storage?.getItem(key) ?? null;
    } catch {
      return null;
    }
  }
}

/** defaultStorage is the page's sessionStorage, or null outside a browser. */
export function defaultStorage(): StorageLike | null {
  try {
    return (globalThis as { sessionStorage?: StorageLike }).sessionStorage ?? null;
  } catch {
    return null;
  }
}
