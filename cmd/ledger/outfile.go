package main

// The files the commands write (history --out, asof --out, --cpuprofile):
// never a file of a store, whatever path or links name it, and an export's
// file replaced only by a whole export.

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/internal/dburl"
	"github.com/interactionledger/ledger/internal/linkpath"
	"github.com/interactionledger/ledger/internal/sqlitedsn"
	"github.com/interactionledger/ledger/projections"
)

// notStoreFile refuses an output path that names a file of the store: the
// SQLite log db's (a URL db has no files here) or the views file it uses
// (viewsPath(db, views), views being the --views flag, "" for the
// default), with their -wal and -shm: writing there would destroy the log
// or the read models. The comparison is by clean absolute path, and by file
// identity for files that exist (links), for each path as given and as its
// symlinks resolve. Any other SQLite database (isDatabase) is refused too.
func notStoreFile(flagName, out, db, views string) error {
	if out == "" || db == "" {
		return nil
	}
	files := storeFiles(db, views)
	if namesOneOf(out, files) || namesOneOf(linkpath.End(out), files) {
		return usageErr("%s %q is a file of the store %q: writing it would destroy the store", flagName, out, dburl.Redact(db))
	}
	if isDatabase(out) {
		return usageErr("%s %q is a SQLite database (a log, a views file of any server) or its -wal, -shm or -journal: writing it would destroy it", flagName, out)
	}
	return nil
}

// outNamesAFile refuses an output path that can name no file: a
// directory, or a path whose directory is missing or is not a directory.
// These are bad values (exit 2), found before the log is opened, as for
// --cpuprofile; opening them failed with exit 1, and asof called a path
// under a regular file one that exists.
func outNamesAFile(flagName, path string) error {
	if path == "" {
		return nil
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return usageErr("%s %s: is a directory: give the path of a file", flagName, path)
	}
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return usageErr("%s %s: %v (its directory %s)", flagName, path, pe.Err, dir)
	}
	if err == nil && !info.IsDir() {
		return usageErr("%s %s: not a directory: %s", flagName, path, dir)
	}
	return nil
}

// isDatabase reports whether path, or the file it is the -wal, -shm or
// -journal of, starts with SQLite's header: a log or a views file, of this
// store or another (a node's --views, which history does not take).
func isDatabase(path string) bool {
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if base, ok := strings.CutSuffix(path, suffix); ok && isDatabase(base) {
			return true
		}
	}
	if info, err := os.Stat(path); err != nil || !info.Mode().IsRegular() {
		return false // a new file, or a pipe or device, which a read would block on
	}
	f, err := os.Open(path)
	if err != nil {
		return false // creating it reports it
	}
	defer f.Close()
	header := make([]byte, 16)
	_, err = io.ReadFull(f, header)
	return err == nil && string(header) == "SQLite format 3\x00"
}

// viewsUsable refuses a --views that can name no file (viewsInADirectory),
// that names an event log (viewsNotLog), or a file that is no SQLite
// database: SQLite called it damaged, and rebuild renamed it to
// <views>.damaged and wrote a views file at its path (a CSV named by a
// slip). A views file at the default path whose header is damaged is still
// set aside by rebuild.
func viewsUsable(db, views string) error {
	if err := viewsInADirectory(views); err != nil {
		return err
	}
	if views != "" && notSQLite(views) {
		return usageErr("--views %s: not a SQLite database (no SQLite header), so no views file: "+
			"if it is one that is damaged, remove it and ledger rebuild builds a new one", views)
	}
	return viewsNotLog(db, views)
}

// viewsInADirectory refuses a --views that is a directory or whose
// directory is missing, as outNamesAFile does an --out, except in the
// default data directory, ./data (a first run makes it, as for the default
// --db; README's three nodes on one machine name ./data/node-a.views). The
// views file's directories were created: a typo, or a data disk not
// mounted, got a new views file built from the whole log in their place.
func viewsInADirectory(views string) error {
	if views == "" || filepath.Dir(filepath.Clean(views)) == filepath.Dir(filepath.Clean(DefaultDB)) {
		return nil
	}
	return outNamesAFile("--views", views)
}

// viewsNotLog refuses a --views that names the SQLite log db itself (or
// its -wal, -shm, a link to it): the read models would be written into
// the log's file, under its write lock, and a rebuild would swap tables
// in it. views is the --views flag ("" for the default, never the log).
// A --views holding another event log is refused too (holdsEventLog),
// whatever --db is.
func viewsNotLog(db, views string) error {
	if views == "" || db == "" {
		return nil
	}
	if !postgres.IsURL(db) {
		files := []string{db}
		if real, err := filepath.EvalSymlinks(db); err == nil && real != db {
			files = append(files, real)
		}
		if namesOneOf(views, files) {
			return usageErr("--views %q is the event log %q: the read models need a file of their own", views, db)
		}
	}
	if holdsEventLog(views) {
		return usageErr("--views %q holds an event log (another log, or a copy of one): the read models need a file of their own", views)
	}
	return nil
}

// holdsEventLog reports whether path is a SQLite database holding an event
// log's tables (events or schema_migrations), which no views file has:
// opened as the views, another log got the read models' tables written
// into it.
func holdsEventLog(path string) bool {
	if !isDatabase(path) {
		return false
	}
	db, err := sql.Open("sqlite3", sqlitedsn.File(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return false
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'schema_migrations')`).Scan(&n)
	return err == nil && n > 0
}

// namesOneOf reports whether path names one of files or its -wal, -shm or
// -journal: by clean absolute path, and by file identity for files that
// exist (links).
func namesOneOf(path string, files []string) bool {
	pathAbs, err := filepath.Abs(path)
	if err != nil {
		return false // opening it reports it
	}
	pathInfo, pathErr := os.Stat(pathAbs)
	for _, base := range files {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			abs, err := filepath.Abs(base + suffix)
			if err != nil {
				continue
			}
			same := abs == pathAbs
			if info, err := os.Stat(abs); !same && err == nil && pathErr == nil {
				same = os.SameFile(info, pathInfo)
			}
			if same {
				return true
			}
		}
	}
	return false
}

// storeFiles lists the files whose -wal and -shm notStoreFile also
// refuses: the views file used and a SQLite db, each also as its symlinks
// resolve (SQLite names the WAL and shm after the resolved file), and a
// symlinked db's default views file under the resolved name.
func storeFiles(db, views string) []string {
	files := []string{viewsPath(db, views)}
	if !postgres.IsURL(db) {
		files = append(files, db)
	}
	for _, f := range slices.Clone(files) {
		real := linkpath.End(f)
		if real == f {
			continue
		}
		files = append(files, real)
		if f == db && views == "" {
			files = append(files, projections.ViewsPath(real))
		}
	}
	return files
}

// output opens --out (or stdout) buffered. finish takes the export's
// error and returns the first one: it flushes, so a full disk is not a
// silent truncation. A regular file (or a new one) is written beside its
// path and renamed over it only by a whole export: a failed one leaves the
// file as it was, never cut where it failed.
func output(ctx context.Context, e env, path string) (io.Writer, func(error) error, error) {
	if path == "" {
		bw := bufio.NewWriterSize(e.stdout, 64<<10)
		return bw, func(err error) error { return firstErr(err, bw.Flush()) }, nil
	}
	info, err := os.Lstat(path)
	if err == nil && !info.Mode().IsRegular() {
		return outputInPlace(ctx, path) // a device, a pipe, a symlink
	}
	f, err := createReplacement(path, info)
	if err != nil {
		return nil, nil, fmt.Errorf("--out: %w", named(err, path))
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 64<<10)
	return bw, func(err error) error {
		if err == nil {
			err = closeFlushed(bw, f, path)
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
		return err
	}, nil
}

// named returns err naming path, the file the user gave, where it names
// the temporary file beside it.
func named(err error, path string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: path, Err: pe.Err}
	}
	return err
}

// createReplacement creates <path>.<pid>.<random>.tmp, the file to be
// renamed over path, with the permissions of the file info describes (nil:
// none) from the start: a private export stays private, while it is
// written too (a file narrowed only after its creation could be opened by
// another user in between, and read through that descriptor). The umask
// narrows them at the creation; the chmod after gives them back (a 0664
// under a 022 umask), never wider. The random part steps past a file of
// the same name that a killed run left (in a container every run is
// process 1).
func createReplacement(path string, info os.FileInfo) (*os.File, error) {
	if info == nil {
		return createTemp(path, 0o666)
	}
	f, err := createTemp(path, info.Mode().Perm())
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	if err := f.Chmod(info.Mode().Perm()); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return f, nil
}

// openFile is os.OpenFile; a test sees the files it makes as made.
var openFile = os.OpenFile

// createTemp creates a new file named <path>.<pid>.<random>.tmp, mode perm
// less the umask, as os.OpenFile makes it.
func createTemp(path string, perm os.FileMode) (f *os.File, err error) {
	for range 100 {
		tmp := fmt.Sprintf("%s.%d.%08x.tmp", path, os.Getpid(), rand.Uint32())
		f, err = openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return f, err
}

// outputInPlace writes straight to path, which is not a regular file: as
// on stdout, what was written before a failure is flushed.
func outputInPlace(ctx context.Context, path string) (io.Writer, func(error) error, error) {
	f, err := openInPlace(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("--out: %w", err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	return bw, func(err error) error { return firstErr(err, closeFlushed(bw, f, path)) }, nil
}

// openInPlace opens path write-only, as a shell's > does: a FIFO waits for
// its reader, until ctx ends. os.Create opened it read-write, which waits
// for nobody: an export shorter than the pipe's buffer was written and
// closed before its reader opened the FIFO, and was lost with exit 0.
func openInPlace(ctx context.Context, path string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	done := make(chan opened, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
		done <- opened{f, err}
	}()
	select {
	case o := <-done:
		return o.f, o.err
	case <-ctx.Done():
		go func() { // a reader may still come: close what it opens
			if o := <-done; o.f != nil {
				o.f.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func firstErr(err, next error) error {
	if err != nil {
		return err
	}
	return next
}

// closeFlushed flushes bw into f and closes f, naming path in an error.
func closeFlushed(bw *bufio.Writer, f *os.File, path string) error {
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
