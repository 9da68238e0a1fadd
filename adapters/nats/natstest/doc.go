// Package natstest has the test helpers shared by the relay's tests in
// adapters/nats and cmd/ledger: reaching the NATS server of the machine
// (failing under CI=true, skipping loudly otherwise), per-test stream,
// subject and bucket names that are deleted afterwards, and the check that
// a stream holds exactly the log (every message naming it in Ledger-Log).
//
// Only tests import it; it must not hold relay logic.
package natstest
