// Package loadgen drives a realistic interaction workload against any
// server that speaks the ledger's HTTP paths (the ledger itself or the
// legacy baseline): users and Zipf-distributed targets, toggles of like and
// collect, single-target reads, feed-page batch reads and list reads. It
// measures throughput, latency percentiles per operation and errors by
// status. It is bench tooling for `ledger bench`; nothing in the service
// imports it.
package loadgen
