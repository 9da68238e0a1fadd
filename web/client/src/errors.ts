import type { ProblemDetails } from './types.js';

/** InvalidParam names one rejected input of a 400 answer. */
export interface InvalidParam {
  name: string;
  reason: string;
}

/**
 * LedgerError is a problem+json answer of the server (RFC 9457), or a
 * non-problem error status. status is the HTTP status; type, title,
 * detail and invalidParams come from the problem body.
 */
export class LedgerError extends Error {
  /** status is the HTTP status of the answer. */
  readonly status: number;
  /** type is the problem type URI, e.g. "urn:ledger:problem:invalid-input". */
  readonly type: string;
  /** title is the short, status-level summary. */
  readonly title: string;
  /** detail says what went wrong with this request. */
  readonly detail: string;
  /** invalid_params lists each rejected input of a 400 answer. */
  readonly invalid_params: InvalidParam[];
  /** retryAfterMs is the Retry-After header in milliseconds, when sent. */
  readonly retryAfterMs: number | undefined;
  /**
   * position, in a write's 503 not-caught-up, is the position of the
   * write's event, which is durable: the write is done, only the read
   * model has not applied it yet (see isDurableWrite). In a write's 412
   * precondition-failed it is the stream's last event (see streamVersion).
   */
  readonly position: number | undefined;
  /**
   * streamVersion, in a write's 412 precondition-failed, is the stream's
   * version when the write was refused: the ifMatch a retry sends (position
   * is then the stream's last event, which a read with minPosition shows).
   */
  readonly streamVersion: number | undefined;
  /**
   * head, in a 412 position-beyond-log, is the log's head when the request
   * was refused: positions up to it are this log's.
   */
  readonly head: number | undefined;

  constructor(status: number, problem: Partial<ProblemDetails>, retryAfterMs?: number) {
    const detail = problem.detail ?? problem.title ?? `HTTP ${status}`;
    super(`ledger: ${status} ${detail}`);
    this.name = 'LedgerError';
    this.status = status;
    this.type = problem.type ?? 'about:blank';
    this.title = problem.title ?? '';
    this.detail = detail;
    this.invalid_params = problem.invalid_params ?? [];
    this.retryAfterMs = retryAfterMs;
    this.position = typeof problem.position === 'number' && problem.position > 0 ? problem.position : undefined;
    this.streamVersion = typeof problem.stream_version === 'number' && problem.stream_version >= 0 ? problem.stream_version : undefined;
    this.head = typeof problem.head === 'number' && problem.head >= 0 ? problem.head : undefined;
  }

  /** invalidParams is invalid_params under a camel-case name. */
  get invalidParams(): InvalidParam[] {
    return this.invalid_params;
  }
}

/**
 * otherLog is the problem type of a request of another log than the
 * server's (412): the server's log was created anew since the session's
 * positions, versions or resume points were given.
 */
export const otherLog = 'urn:ledger:problem:other-log';

/** isOtherLog reports whether err is a 412 other-log answer. */
export function isOtherLog(err: unknown): err is LedgerError {
  return isLedgerError(err, 412) && err.type === otherLog;
}

/**
 * positionBeyondLog is the problem type of a read asking for a position
 * the server's log does not hold (412): the log was restored from an older
 * copy (its id kept) since the session's position was given.
 */
export const positionBeyondLog = 'urn:ledger:problem:position-beyond-log';

/** isPositionBeyondLog reports whether err is a 412 position-beyond-log answer. */
export function isPositionBeyondLog(err: unknown): err is LedgerError {
  return isLedgerError(err, 412) && err.type === positionBeyondLog;
}

/**
 * isDurableWrite reports whether err is a write's answer saying the write
 * is durable although the read model has not applied it in time (503 with
 * the event's position): nothing is to be undone.
 */
export function isDurableWrite(err: unknown): err is LedgerError & { position: number } {
  return isLedgerError(err, 503) && err.position !== undefined;
}

/** isLedgerError reports whether err is a LedgerError (optionally of status). */
export function isLedgerError(err: unknown, status?: number): err is LedgerError {
  return err instanceof LedgerError && (status === undefined || err.status === status);
}

/** httpDate is the IMF-fixdate form of an HTTP date (RFC 9110), e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
const httpDate = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * parseRetryAfter reads a Retry-After header (delay seconds, or an HTTP
 * date in IMF-fixdate form) as milliseconds; undefined when absent or
 * anything else ("1.5", "-1", "5, 6", "2026-12-06"), which Date.parse
 * would read as an immediate retry or some other date.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  const v = value?.trim() ?? '';
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!httpDate.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** problemFrom turns a failed Response into a LedgerError. */
export async function problemFrom(res: Response): Promise<LedgerError> {
  const retry = parseRetryAfter(res.headers.get('Retry-After'));
  let body: Partial<ProblemDetails> = {};
  const type = res.headers.get('Content-Type') ?? '';
  if (type.includes('json')) {
    body = ((await res.json().catch(() => ({}))) ?? {}) as Partial<ProblemDetails>;
  } else {
    await res.body?.cancel().catch(() => undefined);
  }
  return new LedgerError(res.status, body, retry);
}
