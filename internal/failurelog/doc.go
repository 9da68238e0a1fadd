// Package failurelog logs runs of failures of a repeated operation (a
// store's group commits, a tail's reads of the log) without flooding: the
// first failure, then at most one line every 10 s (Every) with a count,
// then the success that ends the run. Its users: the stores' failed group
// commits, the projections' failed reads of the log and the PostgreSQL
// commit listener's failed reconnections.
package failurelog
