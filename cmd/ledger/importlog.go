package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/interactionledger/ledger/adapters/logcopy"
	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/dburl"
	"github.com/interactionledger/ledger/projections"
)

// importLog moves the log at src (a SQLite file or a PostgreSQL URL) into
// the empty log at dest, every event at its position and the log's
// identity with it, and seals src (logcopy.Copy).
func importLog(ctx context.Context, e env, args []string, dest string, lockWait time.Duration) error {
	if len(args) != 1 {
		return usageErr("want: import log SOURCE --db DEST (SOURCE a SQLite file or a postgres:// URL), got %q", args)
	}
	if lockWait < 0 {
		return usageErr("--lock-wait %s: must be >= 0", lockWait)
	}
	src := args[0]
	if err := checkSource(src); err != nil {
		return err
	}
	if err := checkDB(dest); err != nil {
		return err
	}
	if sameLog(src, dest) {
		return usageErr("import log %s --db %s: the source and the destination are the same log", dburl.Redact(src), dburl.Redact(dest))
	}
	lock := &lockWaiter{e: e, src: src, wait: lockWait, start: time.Now()}
	from, err := openSource(ctx, e, src, lock)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := openStore(ctx, dest, storeOptions{checked: true}, cliLogger(e))
	if err != nil {
		return err
	}
	defer to.Close()
	report, finish := progressReporter(e, "import")
	start := time.Now()
	rep, err := logcopy.Copy(ctx, waitingSource{from.copier, lock}, to.copier, dburl.Redact(dest), func(p logcopy.Progress) {
		report(projections.Progress{Projection: "log", Phase: "copy", Done: p.Done, Total: p.Total})
	})
	finish()
	switch {
	case errors.Is(err, logcopy.ErrNotEmpty):
		return usageErr("--db %s: %v; nothing was written", dburl.Redact(dest), err)
	case movedRefusal(err, "import log", src) != nil:
		return movedRefusal(err, "import log", src)
	case errors.Is(err, domain.ErrLogMoved):
		return usageErr("import log %s: %v", dburl.Redact(src), err)
	case err != nil:
		return fmt.Errorf("import log %s --db %s: %w", dburl.Redact(src), dburl.Redact(dest), err)
	}
	printMoved(e, src, dest, rep, time.Since(start))
	return nil
}

func printMoved(e env, src, dest string, rep logcopy.Report, took time.Duration) {
	s := rep.Source
	if rep.Resumed {
		fmt.Fprintf(e.stdout, "%s already held the log of %s (log %s, %d events, head %d, last event %s): an earlier import's copy, "+
			"whose seal did not follow; sealed %s only\n", dburl.Redact(dest), dburl.Redact(src), s.LogID, s.Events, s.Head, s.LastID, dburl.Redact(src))
		return
	}
	fmt.Fprintf(e.stdout, "imported log %s from %s into %s: %d events (head %d, last event %s), %d streams, %d idempotency records\n",
		s.LogID, dburl.Redact(src), dburl.Redact(dest), s.Events, s.Head, s.LastID, s.Streams, s.Idempotency)
	fmt.Fprintf(e.stdout, "checked: the destination holds the same events, head, last event and rows (digest %016x)\n", s.Digest)
	fmt.Fprintf(e.stdout, "took %s (%.0f events/s); %s is sealed: it refuses writes from now on, start the nodes with --db %s\n",
		took.Round(time.Millisecond), float64(s.Events)/max(took.Seconds(), 1e-9), dburl.Redact(src), dburl.Redact(dest))
}

// checkSource refuses a SOURCE that names no log before anything is
// opened: what checkDB refuses, a missing or empty file, and a file of
// no table (opening it for writing would make it a new, empty log).
func checkSource(src string) error {
	switch dburl.Classify(src) {
	case dburl.Postgres:
		if noDatabase(src) {
			return usageErr("import log %q names no database: give it as the URL's path, postgres://HOST/DBNAME", dburl.Redact(src))
		}
		return nil
	case dburl.Path:
	default:
		return checkDB(src) // a misspelt or other URL: named without its password
	}
	info, err := os.Stat(src)
	switch {
	case err != nil:
		return usageErr("import log %s: %v", src, errors.Unwrap(err))
	case info.IsDir():
		return usageErr("import log %s: is a directory: give the SQLite file of the log", src)
	case notSQLite(src):
		return usageErr("import log %s: not a SQLite database (a CSV? ledger import legacy imports those)", src)
	case holdsNoTable(src):
		return usageErr("import log %s: the file holds no table, so no event log", src)
	}
	return nil
}

// openSource opens src, which checkSource checked, for writing (a log of
// an older schema is migrated), after checking that a PostgreSQL src holds a log: opened
// for writing, an empty schema would become one.
func openSource(ctx context.Context, e env, src string, lock *lockWaiter) (*logStore, error) {
	if postgres.IsURL(src) {
		ro, err := openStore(ctx, src, storeOptions{readOnly: true, what: "SOURCE", checked: true}, cliLogger(e))
		if errors.Is(err, domain.ErrNotFound) {
			return nil, usageErr("import log %s: %v", dburl.Redact(src), err)
		}
		if err == nil {
			_ = ro.Close()
		}
	}
	var store *logStore
	err := lock.retry(ctx, func() (err error) {
		store, err = openStore(ctx, src, storeOptions{what: "SOURCE", checked: true, busyTimeout: lockTry}, cliLogger(e))
		return err
	})
	return store, err
}

// defaultLockWait is import log's --lock-wait: how long it waits for a
// SQLite SOURCE's write lock, which a server on it holds for each of its
// commits. In a long burst of writes the lock is free only between two
// commits, and one wait of the store's busy timeout (5 s) often missed it.
const defaultLockWait = time.Minute

// lockTry is how long each try for a SQLite SOURCE's lock waits (the
// store's busy timeout), and lockSayEvery how often the wait is said.
const (
	lockTry      = time.Second
	lockSayEvery = 5 * time.Second
)

// lockWaiter retries the steps of import log that take a SQLite SOURCE's
// write lock (opening it, which may migrate it, and the copy's first
// step) while another connection holds it, saying so on stderr every
// lockSayEvery, up to wait in all since start.
type lockWaiter struct {
	e     env
	src   string
	wait  time.Duration
	start time.Time
	said  time.Time
}

// retry runs step until it does not fail for the lock (sqlite.IsLocked),
// wait has passed, or ctx ends.
func (w *lockWaiter) retry(ctx context.Context, step func() error) error {
	for {
		err := step()
		if !sqlite.IsLocked(err) || ctx.Err() != nil {
			return err
		}
		waited := time.Since(w.start)
		if waited >= w.wait {
			return fmt.Errorf("the write lock of %s was not had within --lock-wait %s: another process (a server on it) "+
				"kept writing; nothing was copied and it is not sealed: run again when it writes less, or give a longer --lock-wait: %w",
				w.src, w.wait, err)
		}
		if time.Since(w.said) >= lockSayEvery {
			w.said = time.Now()
			fmt.Fprintf(w.e.stderr, "import log: waiting for the write lock of %s, which another process (a server on it) holds: %s of at most %s (--lock-wait)\n",
				w.src, waited.Round(time.Second), w.wait)
		}
	}
}

// waitingSource is the source's logcopy.Store, its BeginCopy retried while
// another connection holds the lock (lockWaiter).
type waitingSource struct {
	logcopy.Store
	lock *lockWaiter
}

// BeginCopy takes the source's write lock, waiting for it up to --lock-wait.
func (s waitingSource) BeginCopy(ctx context.Context) (tx logcopy.Tx, err error) {
	err = s.lock.retry(ctx, func() error {
		tx, err = s.Store.BeginCopy(ctx)
		return err
	})
	return tx, err
}

// sameLog reports whether src and dest name the same log: one file (by
// its path or by what it is), or one database and schema.
func sameLog(src, dest string) bool {
	if postgres.IsURL(src) != postgres.IsURL(dest) {
		return false
	}
	if postgres.IsURL(src) {
		a, aerr := postgres.Where(src)
		b, berr := postgres.Where(dest)
		return aerr == nil && berr == nil && a == b
	}
	a, aerr := filepath.Abs(src)
	b, berr := filepath.Abs(dest)
	if aerr == nil && berr == nil && a == b {
		return true
	}
	ai, aerr := os.Stat(src)
	bi, berr := os.Stat(dest)
	return aerr == nil && berr == nil && os.SameFile(ai, bi)
}
