// Package testlog gives tests a log sink that goroutines write while the
// test reads it: Buffer, a bytes.Buffer under a mutex.
//
// It is imported by tests only; nothing here runs in the ledger.
package testlog
