// Package backoff is the one exponential wait between failed attempts of
// the project's long-running loops: the relay's sessions and the
// projections' held batch. (The command service's retry of a version
// conflict draws from a short random window instead: domain.Ledger.)
package backoff
