package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/internal/dburl"
	"github.com/interactionledger/ledger/internal/sqlitedsn"
	"github.com/interactionledger/ledger/internal/walcheckpoint"
	"github.com/interactionledger/ledger/projections"
)

// runRestore puts a backup of a SQLite log in the log's place while no
// server runs on it. The log that was there and its views file are set
// aside, each with its -wal and -shm (a WAL left beside the restored file
// is another file's, and SQLite would replay it onto the copy), and the
// server builds the views of the restored log at its start.
func runRestore(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "restore", "--from FILE.db [flags]")
	db := dbFlag(fs)
	views := viewsFlag(fs)
	from := fs.String("from", "", "the backup to restore (a SQLite log, as ledger backup writes it)")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	if err := checkRestore(*db, *views, *from); err != nil {
		return err
	}
	viewsFile := viewsPath(*db, *views)
	unlock, err := projections.LockServe(viewsFile)
	if errors.Is(err, projections.ErrServed) {
		return usageErr("--db %s: a server is running on it (it holds %s's serve lock): stop it first; "+
			"restore replaces the log only while no server uses it", *db, viewsFile)
	}
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	perm, err := sourcePerm(*from)
	if err != nil {
		return err
	}
	// Read through SQLite, so that a WAL beside the backup is read with it.
	res, tmp, err := copyLogBeside(ctx, e, "restore", copyEnds{"--from", *from, "--db", *db}, perm)
	defer removeDatabase(tmp)
	if err != nil {
		return err
	}
	stamp := "before-restore-" + start.UTC().Format("20060102T150405Z")
	asideLog, err := setAside(ctx, *db, stamp)
	if err != nil {
		return err
	}
	asideViews, err := setAside(ctx, viewsFile, stamp)
	if err == nil {
		err = placeRestored(tmp, *db)
	}
	if err != nil { // the log and views file go back where they were
		return errors.Join(err, putBack(asideLog, *db), putBack(asideViews, viewsFile))
	}
	printRestore(e, *from, *db, res, asideLog, asideViews, time.Since(start))
	return nil
}

// placeRestored is placeCopy; tests make it fail.
var placeRestored = placeCopy

// checkRestore refuses, before anything is read or moved, what cannot be
// restored: a PostgreSQL log, a --from that is missing, no SQLite file,
// or a file of the store itself.
func checkRestore(db, views, from string) error {
	if postgres.IsURL(db) {
		return usageErr("--db %q is a PostgreSQL log: restore it with PostgreSQL's own tools (pg_restore, "+
			"a base backup); ledger restore puts back a SQLite log", dburl.Redact(db))
	}
	if err := logPathUsable(db); err != nil {
		return err
	}
	if err := outNamesAFile("--db", db); err != nil { // a log lost with its directory
		return err
	}
	switch {
	case from == "":
		return usageErr("--from FILE.db is required: the backup to restore")
	case postgres.IsURL(from):
		return usageErr("--from %q is a PostgreSQL URL: restore takes a SQLite backup file", dburl.Redact(from))
	case namesOneOf(from, storeFiles(db, views)):
		return usageErr("--from %s is a file of the store at --db %s (the log, its views file or their -wal/-shm): give the backup's file", from, db)
	}
	info, err := os.Stat(from)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageErr("--from %s: no such file", from)
	case err != nil:
		return usageErr("--from %s: %v", from, err)
	case !info.Mode().IsRegular() || !isDatabase(from):
		return usageErr("--from %s: not a SQLite database (no SQLite header): give a backup of the log", from)
	}
	return nil
}

// setAside renames the SQLite file at path, with its -wal and -shm, to
// path.stamp (and its -wal, -shm), and returns that name; "" when there
// is no file at path. It first folds the WAL into the file (a truncating
// checkpoint), so that the file set aside is whole on its own, and
// refuses when another process is using it (the checkpoint cannot finish).
// A file SQLite cannot read (a damaged log, often why it is restored) is
// set aside as it is.
func setAside(ctx context.Context, path, stamp string) (string, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if busy, err := checkpointTruncate(ctx, path); err == nil && busy {
		return "", usageErr("%s is in use by another process (its WAL could not be checkpointed): stop the "+
			"servers and tools on the log first", path)
	}
	aside := path + "." + stamp
	for _, suffix := range walFiles {
		err := os.Rename(path+suffix, aside+suffix)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("set %s aside: %w", path+suffix, err)
			if suffix == "" { // nothing moved
				return "", err
			}
			return "", errors.Join(err, putBack(aside, path))
		}
	}
	return aside, nil
}

// walFiles are the suffixes of a SQLite file in WAL mode and of what
// SQLite keeps beside it, which move together.
var walFiles = []string{"", "-wal", "-shm"}

// putBack renames the files setAside set aside at aside back to path,
// when nothing took path meanwhile; aside "" set nothing aside.
func putBack(aside, path string) error {
	if aside == "" {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s is left at %s: a file is at %s", path, aside, path)
	}
	var errs []error
	for _, suffix := range walFiles {
		if err := os.Rename(aside+suffix, path+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkpointTruncate folds the WAL of the SQLite file at path into it and
// empties it (walcheckpoint.Checkpoint); busy is true when another
// connection's use kept it from finishing.
func checkpointTruncate(ctx context.Context, path string) (busy bool, err error) {
	conn, err := sql.Open("sqlite3", sqlitedsn.File(path, url.Values{"_busy_timeout": {"2000"}}))
	if err != nil {
		return false, err
	}
	defer conn.Close()
	r, err := walcheckpoint.Checkpoint(ctx, conn, "TRUNCATE")
	return r.Busy != 0, err
}

func printRestore(e env, from, db string, res sqlite.BackupResult, asideLog, asideViews string, took time.Duration) {
	log := res.LogID
	if log == "" {
		log = "(no identity: a log of a build before migration 0004)"
	}
	fmt.Fprintf(e.stdout, "restored log %s (schema %d) up to position %d (last event %s) from %s to %s in %s\n",
		log, res.Schema, res.Head, orNone(res.LastID), from, db, took.Round(time.Millisecond))
	if asideLog != "" {
		fmt.Fprintf(e.stdout, "the log that was at %s is at %s (with its -wal, if it had one): remove it once the restored log serves\n", db, asideLog)
	}
	if asideViews != "" {
		fmt.Fprintf(e.stdout, "its views file is at %s: a server started on the restored log builds the views from it\n", asideViews)
	}
	if res.Sealed {
		fmt.Fprintf(e.stdout, "%s: the restored log refuses writes as it did then\n", res.Moved.Message())
	}
	fmt.Fprintf(e.stdout, "clients' positions past %d are of the log before the restore: reads and streams waiting for one answer 412 position-beyond-log\n", res.Head)
}
