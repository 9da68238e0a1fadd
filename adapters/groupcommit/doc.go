// Package groupcommit is the store-agnostic half of a group-committing
// event store: the queue that appending goroutines put their requests on,
// the race between a caller giving up and the writer taking its request,
// the gathering of queued requests into one batch (all at once with
// Gather, or one at a time while the writer's transaction runs with
// Linger), and answering committed batches on a goroutine of their own
// (Answerer), and a decided request's rewrite (NewDecideRequest,
// Request.DecideAt: the candidate append of a command, made by the writer
// into the append the stream's state calls for, or none, and refused when
// the request it follows is not appended: Request.Written, RolledBack,
// which the writer calls), and a store's
// Append, Decide and QueueDecide (Decide without waiting: Enqueue) in
// front of its writer (Edge). Each store
// (adapters/sqlite, adapters/postgres) encodes a request's rows, runs the
// writer goroutine and writes a batch in one transaction of its own.
//
// What must not live here: SQL, drivers, or anything about how a batch is
// written; this package only moves requests and answers.
package groupcommit
