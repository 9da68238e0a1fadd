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
  #memoryBelow = 0;
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
    return Math.max(this.#memory, this.#stored(this.#key));
  }

  /**
   * note records position when it is higher than the one kept. A lower
   * one is remembered apart (the highest of them): after a restore of the
   * server's log from an older copy, the writes answered before the kept
   * position is refused have positions of the restored log, below it, and
   * rewind keeps them.
   */
  note(position: number): void {
    if (!Number.isSafeInteger(position) || position <= 0) return;
    const at = this.get();
    if (position > at) {
      this.#memory = position;
      this.#safeSet(this.#key, String(position));
    } else if (position < at && position > this.#below()) {
      this.#safeSet(`${this.#key}:below`, String(position));
      this.#memoryBelow = position;
    }
  }

  /**
   * rewind forgets the kept position, which the server's log does not
   * hold, and keeps instead the highest position noted below it: a
   * write's of the restored log, which a read must still reflect, even
   * one beyond the head the refusal named (the write committed after the
   * server read it). One noted before the restore and beyond the restored
   * head is refused in turn, and forgotten with nothing below it.
   */
  rewind(): void {
    const below = this.#below();
    this.clear();
    this.note(below);
  }

  #below(): number {
    return Math.max(this.#memoryBelow, this.#stored(`${this.#key}:below`));
  }

  /** #stored is the position kept in storage under key, 0 when none or not a position. */
  #stored(key: string): number {
    const stored = Number(this.#safeGet(key) ?? '0');
    return Number.isSafeInteger(stored) && stored > 0 ? stored : 0;
  }

  #safeSet(key: string, value: string): void {
    try {
      this.#storage?.setItem(key, value);
    } catch {
      // Storage full or denied (private mode): the memory copy still holds
      // for this page's lifetime.
    }
  }

  /** clear forgets the position, and those noted below it (e.g. on sign-out). */
  clear(): void {
    this.#memory = 0;
    this.#memoryBelow = 0;
    try {
      this.#storage?.removeItem(this.#key);
      this.#storage?.removeItem(`${this.#key}:below`);
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
