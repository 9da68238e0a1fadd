// Package httpapi is the HTTP adapter of the Interaction Ledger: it serves
// the v1 API of docs/api.md (writes, reads, history, the live event stream) and
// the operational endpoints (/healthz, /readyz, /metrics, /openapi.json).
//
// What lives here: routing, request validation, authentication (service
// tokens and JWT users), the one mapping of domain errors to RFC 9457
// problem responses, rate limiting, CORS, request logs, Prometheus metrics
// and the OpenAPI document. The package depends on the command side, the event log
// and the read model only through the small interfaces it defines (Ledger,
// Log, ReadModel), so it can serve any store and any projection engine.
//
// Files: writes.go and reads.go are the handlers, each a short walk:
// params.go parses and validates every path, query and header input
// (collecting all problems into one 400), body.go the write body,
// negotiate.go the Accept header, responses.go the response bodies and
// their JSON, problem.go the errors, auth.go who may do what, cors.go which
// browser origins may call, history.go and stream.go the history export and
// the live event stream, opening.go what a server answers while its read
// model still opens (Opening: a node listens before its views are built).
//
// What must not live here: business rules (deciding whether a write changes
// anything belongs to domain), SQL or any storage detail, projection logic,
// or process wiring (flags, signals, opening files belong to cmd/ledger).
package httpapi
