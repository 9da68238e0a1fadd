// React hooks over the TanStack Query bindings of @interactionledger/client.
// Wrap the app in <QueryClientProvider> and <LedgerProvider client={...}>.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, createElement, useCallback, useContext, useEffect, type ReactNode } from 'react';
import type { LedgerClient } from './client.js';
import { subscribeLive, type LiveOptions } from './live.js';
import {
  actorsInfiniteQueryOptions,
  collectionInfiniteQueryOptions,
  feedQueryOptions,
  nextToggleState,
  resyncOnLogChange,
  targetQueryOptions,
  toggleMutationOptions,
} from './query.js';
import { targetKey, type TargetRef } from './types.js';

const LedgerContext = createContext<LedgerClient | null>(null);

/**
 * LedgerProvider makes a LedgerClient available to the hooks below it, and
 * refetches the cached views when the server's log changes
 * (resyncOnLogChange).
 */
export function LedgerProvider(props: { client: LedgerClient; children?: ReactNode }) {
  const qc = useQueryClient();
  const { client } = props;
  useEffect(() => resyncOnLogChange(client, qc), [client, qc]);
  return createElement(LedgerContext.Provider, { value: client }, props.children);
}

/** useLedgerClient returns the provided LedgerClient; it throws outside a LedgerProvider. */
export function useLedgerClient(): LedgerClient {
  const c = useContext(LedgerContext);
  if (!c) throw new Error('useLedgerClient: wrap the tree in <LedgerProvider client={...}>');
  return c;
}

/** useInteraction reads one target's counts, and viewer's state when viewer is given. */
export function useInteraction(target: TargetRef, viewer?: string | null) {
  return useQuery(targetQueryOptions(useLedgerClient(), target, viewer));
}

/** useFeed reads a page of targets in one request. */
export function useFeed(targets: TargetRef[], viewer?: string | null) {
  return useQuery(feedQueryOptions(useLedgerClient(), targets, viewer));
}

/** useWhoLiked pages who turned kind on for a target, newest first. */
export function useWhoLiked(target: TargetRef, kind = 'like', limit?: number) {
  return useInfiniteQuery(actorsInfiniteQueryOptions(useLedgerClient(), target, kind, limit));
}

/** useMyCollection pages what user turned kind on for, newest first. */
export function useMyCollection(user: string, kind = 'collect', opts: { type?: string; limit?: number } = {}) {
  return useInfiniteQuery(collectionInfiniteQueryOptions(useLedgerClient(), user, kind, opts));
}

/**
 * useToggleInteraction returns the mutation of kind for user on target and
 * toggle(callbacks?), which asks for the opposite of the last click
 * (optimistic, last click wins; see toggleMutationOptions). The callbacks
 * are useMutation's per-call ones: only the last click's fire.
 */
export function useToggleInteraction(target: TargetRef, kind: string, user: string) {
  const client = useLedgerClient();
  const qc = useQueryClient();
  const key = targetKey(target);
  const mutation = useMutation(toggleMutationOptions(client, qc, { target: key, kind, user }));
  const { mutate } = mutation;
  const toggle = useCallback(
    (callbacks?: Parameters<typeof mutate>[1]) => mutate({ on: nextToggleState(qc, { target: key, kind, user }) }, callbacks),
    [mutate, qc, key, kind, user],
  );
  return { ...mutation, toggle };
}

/**
 * useLiveUpdates follows the live event stream while mounted (and enabled)
 * and patches cached counts from it; see subscribeLive.
 */
export function useLiveUpdates(opts: LiveOptions & { enabled?: boolean } = {}) {
  const client = useLedgerClient();
  const qc = useQueryClient();
  const { enabled = true, after } = opts;
  const { onEvent, onError, onOpen, onClose } = opts;
  // The targets as one string: a new array of the same targets each
  // render must not reconnect the stream.
  const targets = opts.targets?.map(targetKey).join('\n');
  useEffect(() => {
    if (!enabled) return;
    return subscribeLive(client, qc, { after, targets: targets ? targets.split('\n') : undefined, onEvent, onError, onOpen, onClose });
    // The callbacks are read at subscription time on purpose: a new
    // function each render must not reconnect the stream.
  }, [client, qc, enabled, after, targets]);
}
