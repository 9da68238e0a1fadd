// Names for the generated OpenAPI types, so callers never spell
// components["schemas"][...] themselves.
import type { components, operations } from './schema.js';

type Schemas = components['schemas'];

/** Target is a thing users interact with: {type: "article", id: "a-1"}. */
export type Target = Schemas['Target'];
/** Counts maps each configured kind to how many users have it on. */
export type Counts = Schemas['Counts'];
/** Viewer maps each configured kind to whether the viewer has it on. */
export type Viewer = Schemas['Viewer'];
/** WriteResult is the answer of a write: the state after it and its position. */
export type WriteResult = Schemas['WriteResult'];
/** TargetView is one target's counts (and a viewer's state) at a position. */
export type TargetView = Schemas['TargetView'];
/** TargetBatch is a feed page: target views in request order. */
export type TargetBatch = Schemas['TargetBatch'];
/** ActorPage is one page of who turned a kind on for a target, newest first. */
export type ActorPage = Schemas['ActorPage'];
/** ItemPage is one page of what a user turned a kind on for, newest first. */
export type ItemPage = Schemas['ItemPage'];
/** LedgerEvent is one event of the log. */
export type LedgerEvent = Schemas['Event'];
/** History is one page of the event log. */
export type History = Schemas['History'];
/** ProblemDetails is an RFC 9457 problem answer. */
export type ProblemDetails = Schemas['Problem'];
/** HistoryQuery are the filters of GET /v1/events. */
export type HistoryQuery = NonNullable<operations['listEvents']['parameters']['query']>;
/** LiveEvent is an event of the live stream: the event and its target's counts after it. */
export type LiveEvent = LedgerEvent & { counts: Counts };

/** TargetRef names a target as an object or as "type/id". */
export type TargetRef = Target | string;

/**
 * toTarget turns a TargetRef into a Target. It throws a TypeError when a
 * string is not "type/id".
 */
export function toTarget(ref: TargetRef): Target {
  if (typeof ref !== 'string') return { type: ref.type, id: ref.id };
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1) {
    throw new TypeError(`target ${JSON.stringify(ref)} is not "type/id"`);
  }
  return { type: ref.slice(0, slash), id: ref.slice(slash + 1) };
}

/** targetKey is the "type/id" form of a target, used in query keys. */
export function targetKey(ref: TargetRef): string {
  const t = toTarget(ref);
  return `${t.type}/${t.id}`;
}
