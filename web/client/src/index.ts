// @interactionledger/client: the browser half of the Interaction Ledger.
// A fetch client with session consistency, TanStack Query bindings on
// @tanstack/query-core (any framework adapter can use them), and a live
// update helper. React hooks live in "@interactionledger/client/react".
export { createLedgerClient } from './client.js';
export type { LedgerClient, LedgerClientOptions, PageOptions, RequestOptions, WriteOptions } from './client.js';
export {
  LedgerError,
  isDurableWrite,
  isLedgerError,
  isOtherLog,
  isPositionBeyondLog,
  otherLog,
  parseRetryAfter,
  positionBeyondLog,
} from './errors.js';
export type { InvalidParam } from './errors.js';
export { SessionPosition } from './session.js';
export type { StorageLike } from './session.js';
export {
  actorsInfiniteQueryOptions,
  cachedTargets,
  collectionInfiniteQueryOptions,
  feedQueryOptions,
  ledgerKeys,
  metaInvalidation,
  nextToggleState,
  patchTarget,
  resyncOnLogChange,
  targetQueryOptions,
  toggleMutationOptions,
  viewerState,
} from './query.js';
export type { InvalidatesMeta, PagedQueryOptions, ToggleContext, ToggleKey, ToggleVariables, ViewQueryOptions } from './query.js';
export { applyLiveEvent, subscribeLive } from './live.js';
export type { LiveOptions } from './live.js';
export { targetKey, toTarget } from './types.js';
export type * from './types.js';
export type { components, operations, paths } from './schema.js';
