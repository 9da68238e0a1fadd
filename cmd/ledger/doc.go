// Command ledger is the Interaction Ledger's one binary: the HTTP server
// (serve), the relay of the log into NATS JetStream (relay nats) and the
// operator and analyst tools (history, import, backup, restore, rebuild,
// asof, verify, stats, bench).
//
// main only sets up signal handling and calls run, which tests call
// directly. This package wires adapters together; no business rule lives
// here: deciding is in domain, read models in projections, I/O in adapters.
// outfile.go keeps the files the commands write (history --out, asof --out,
// backup --out, --cpuprofile) off the store's files, and replaces an export's file only
// with a whole export.
package main
