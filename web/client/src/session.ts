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
 * forward.
 */
export class SessionPosition {
  readonly #storage: StorageLike | null;
  readonly #key: string;
  #memory = 0;

  /** constructor takes the storage (null: memory only) and the key to keep it under. */
  constructor(storage: StorageLike | null, key: string) {
    this.#storage = storage;
    this.#key = key;
  }

  /** get returns the highest position seen, 0 when none. */
  get(): number {
    const stored = Number(this.#safeGet() ?? '0');
    return Math.max(this.#memory, Number.isSafeInteger(stored) && stored > 0 ? stored : 0);
  }

  /** note records position when it is higher than the one kept. */
  note(position: number): void {
    if (!Number.isSafeInteger(position) || position <= this.get()) return;
    this.#memory = position;
    try {
      this.#storage?.setItem(this.#key, String(position));
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

  #safeGet(): string | null {
    try {
      return this.#storage?.getItem(this.#key) ?? null;
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
