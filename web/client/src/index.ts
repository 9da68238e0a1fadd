// @interactionledger/client: the browser half of the Interaction Ledger.
// A fetch client with session consistency, TanStack Query bindings on
// @tanstack/query-core (any framework adapter can use them), and a live
// update helper. React hooks live in "@interactionledger/client/react".
export { createLedgerClient } from './client';
export type { LedgerClient, LedgerClientOptions, PageOptions, RequestOptions, WriteOptions } from './client';
export { LedgerError, isLedgerError, parseRetryAfter } from './errors';
export type { InvalidParam } from './errors';
export { SessionPosition } from './session';
export type { StorageLike } from './session';
export {
  actorsInfiniteQueryOptions,
  cachedTargets,
  collectionInfiniteQueryOptions,
  feedQueryOptions,
  ledgerKeys,
  metaInvalidation,
  nextToggleState,
  patchTarget,
  targetQueryOptions,
  toggleMutationOptions,
  viewerState,
} from './query';
export type { InvalidatesMeta, ToggleContext, ToggleKey, ToggleVariables } from './query';
export { applyLiveEvent, subscribeLive } from './live';
export type { LiveOptions } from './live';
export { targetKey, toTarget } from './types';
export type * from './types';
export type { components, operations, paths } from './schema';
