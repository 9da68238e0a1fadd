package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/dburl"
	"github.com/interactionledger/ledger/projections"
)

// runBackup copies a SQLite log, while servers write it, into a new file:
// one consistent snapshot, checked, synced and put in place whole.
func runBackup(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "backup", "--out FILE.db [flags]")
	db := dbFlag(fs)
	out := fs.String("out", "", "the new SQLite file to write the copy of the log to (must not exist)")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	if err := checkBackup(*db, *out); err != nil {
		return err
	}
	perm, err := sourcePerm(*db)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := backupInto(ctx, e, *db, *out, perm)
	if err != nil {
		return err
	}
	printBackup(e, *out, res, time.Since(start))
	return nil
}

// checkBackup refuses, before anything is read, a --db that is no SQLite
// log file here and an --out that cannot be a new file.
func checkBackup(db, out string) error {
	if err := checkDB(db); err != nil {
		return err
	}
	if postgres.IsURL(db) {
		return usageErr("--db %q is a PostgreSQL log: back it up with PostgreSQL's own tools (pg_dump -n SCHEMA, "+
			"or a base backup); ledger backup copies a SQLite log", dburl.Redact(db))
	}
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return usageErr("--db %s: no such file: there is no log to back up", db)
	}
	switch out {
	case "":
		return usageErr("--out FILE.db is required")
	case "-":
		return usageErr("--out -: backup writes a SQLite file, never to stdout: give its path (./- for a file of that name)")
	}
	if err := notStoreFile("--out", out, db, ""); err != nil {
		return err
	}
	if err := outNamesAFile("--out", out); err != nil {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return usageErr("--out %s exists: a backup is written into a new file only", out)
	}
	return nil
}

// sourcePerm is the log file's permission bits, which its copy gets: it
// holds the same data.
func sourcePerm(db string) (os.FileMode, error) {
	info, err := os.Stat(db)
	if err != nil {
		return 0, err
	}
	return info.Mode().Perm(), nil
}

// backupInto copies db into a new file beside out and, once the copy is
// checked, links it at out: an interrupted or failed backup leaves nothing
// at out, and a file that appeared at out meanwhile is never replaced.
func backupInto(ctx context.Context, e env, db, out string, perm os.FileMode) (sqlite.BackupResult, error) {
	res, tmp, err := copyLogBeside(ctx, e, "backup", copyEnds{"--db", db, "--out", out}, perm)
	defer removeDatabase(tmp)
	if err != nil {
		return res, err
	}
	return res, placeCopy(tmp, out)
}

// copyEnds are the flags and paths a copy of a log reads from and writes
// beside, as refusals name them.
type copyEnds struct{ fromFlag, from, toFlag, to string }

// copyLogBeside copies the SQLite log c.from, through SQLite's online
// backup API (sqlite.Backup: one snapshot, checked and read back), into a
// new file beside c.to with perm; tmp is that file ("" when none was
// made), which the caller removes (removeDatabase) once it is placed or
// given up. Progress goes to stderr in pages, under verb.
func copyLogBeside(ctx context.Context, e env, verb string, c copyEnds, perm os.FileMode) (res sqlite.BackupResult, tmp string, err error) {
	f, err := createTemp(c.to, perm)
	if err != nil {
		return res, "", fmt.Errorf("%s: %w", c.toFlag, named(err, c.to))
	}
	tmp = f.Name()
	f.Close()
	report, finish := unitReporter(e, verb, "pages")
	res, err = sqlite.Backup(ctx, c.from, tmp, func(done, total int) {
		report(projections.Progress{Projection: "log", Phase: "copy", Done: int64(done), Total: int64(total)})
	})
	finish()
	if errors.Is(err, domain.ErrInvalidInput) { // a SQLite file without an event log
		return res, tmp, usageErr("%s %s: %v", c.fromFlag, c.from, err)
	}
	return res, tmp, err
}

// placeCopy links the finished copy tmp at out, which must still not
// exist, and syncs the directory so the name survives a power cut.
func placeCopy(tmp, out string) error {
	appeared := usageErr("--out %s: a file appeared there during the backup; it was left as it is", out)
	err := os.Link(tmp, out)
	if errors.Is(err, fs.ErrExist) {
		return appeared
	}
	if err != nil { // a file system without hard links
		if _, statErr := os.Lstat(out); statErr == nil {
			return appeared
		}
		if err := os.Rename(tmp, out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	return syncDir(filepath.Dir(out))
}

// syncDir fsyncs a directory, making the names created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeDatabase removes a SQLite file and what SQLite keeps beside it.
// It does nothing for "" (no file was made).
func removeDatabase(path string) {
	if path == "" {
		return
	}
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}

func printBackup(e env, out string, res sqlite.BackupResult, took time.Duration) {
	log := res.LogID
	if log == "" {
		log = "(no identity: a log of a build before migration 0004)"
	}
	fmt.Fprintf(e.stdout, "backed up log %s (schema %d) up to position %d (last event %s): %d pages, %d bytes, to %s in %s\n",
		log, res.Schema, res.Head, orNone(res.LastID), res.Pages, res.Bytes, out, took.Round(time.Millisecond))
	if res.Sealed {
		fmt.Fprintf(e.stdout, "%s: the copy refuses writes as the log does\n", res.Moved.Message())
	}
	fmt.Fprintln(e.stdout, "the views file is not in the backup: a server started on the copy without one builds it from the log")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
