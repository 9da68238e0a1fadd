// Package baseline is an honest implementation of the design the ledger
// replaces, for `ledger bench baseline`: one mutable user_actions row per
// like or collect, is_deleted set on cancel, counts computed on read with
// COUNT(*) ... WHERE is_deleted = 0. It serves the same HTTP paths and JSON
// shapes as the ledger (writes, single and batch target reads, "who liked
// it" lists) over the same SQLite settings (WAL, synchronous=FULL, one
// writer connection) and the same net/http stack, so the two can be driven
// by one workload and compared in one run. It is bench tooling only.
package baseline
