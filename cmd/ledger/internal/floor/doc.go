// Package floor is the same-run floor of `ledger bench http --floor`: Go's
// net/http answering the workload's requests (the ledger's paths, methods
// and query parameters) with bodies of the ledger's JSON shapes and about
// its sizes, and the headers the ledger sends, built by appending bytes,
// with no store, projection or cache behind them. Driven by the same load
// generator on the same cores right after the ledger, its CPU per request
// and latencies are what any Go HTTP server pays on that machine at that
// rate (the kernel's loopback TCP, net/http's parsing and connection
// handling, the runtime's scheduling); the ledger's figures above them are
// the ledger's own work. It is bench tooling only: it checks nothing and
// remembers nothing.
package floor
