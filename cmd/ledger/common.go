package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// DefaultDB is where the ledger keeps its log when --db is not given.
const DefaultDB = "./data/ledger.db"

// dbFlag adds --db.
func dbFlag(fs *flag.FlagSet) *string {
	p := new(string)
	dbFlagVar(fs, p)
	return p
}

// dbFlagVar adds --db, stored in p.
func dbFlagVar(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "db", DefaultDB, "the event log: a SQLite file (serve, import and bench generate create it on first run, in a directory that exists, or the default ./data; the other commands need it to exist) or a postgres:// URL (a cluster's shared log; search_path=SCHEMA picks the schema)")
}

// viewsFlagVar adds --views, stored in p.
func viewsFlagVar(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "views", "", "SQLite file of this node's read models (default <db>.views, or "+DefaultClusterViews+" when --db is a URL)")
}

// viewsFlag adds --views.
func viewsFlag(fs *flag.FlagSet) *string {
	p := new(string)
	viewsFlagVar(fs, p)
	return p
}

// kindsFlag adds --kinds.
func kindsFlag(fs *flag.FlagSet) *string {
	p := new(string)
	kindsFlagVar(fs, p)
	return p
}

// kindsFlagVar adds --kinds, stored in p.
func kindsFlagVar(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "kinds", strings.Join(domain.DefaultKinds, ","), "comma-separated interaction kinds")
}

// parseKinds turns --kinds into a KindSet; a bad value is a usage error.
func parseKinds(s string) (domain.KindSet, error) {
	set, err := domain.NewKindSet(strings.Split(s, ","))
	if err != nil {
		return domain.KindSet{}, usageErr("--kinds %q: %v", s, err)
	}
	return set, nil
}

// parseTime parses an optional RFC 3339 flag value, nil when empty; a bad
// value is a usage error naming the flag.
func parseTime(flagName, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, usageErr("--%s %q: want RFC 3339, e.g. 2026-11-22T10:00:00Z", flagName, s)
	}
	return &t, nil
}

// cliLogger logs warnings and errors of the libraries to stderr as text.
func cliLogger(e env) *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// serverGCPercent is the GC target of the servers (serve and the bench
// baseline alike, and the bench load generator) unless GOGC is set: their live heap is a few tens of MB,
// and collecting at 4x it instead of 2x halves the collector's share of the
// CPU under load for a few tens of MB more memory.
const serverGCPercent = 400

// buildGCPercent is the GC target of the commands that build projections
// in one go (rebuild, asof, verify, and serve while it opens its
// projections, which may build them) unless GOGC is set: their live heap is
// mostly a rebuild's slots and folds (~130 MB at its peak for a 10M-event
// log), and collecting at 1.5x it instead of 2x keeps the peak memory a
// quarter lower (240 against 325 MB) in the same wall time (paired runs;
// see README, "Rebuild, third round").
const buildGCPercent = 50

// tuneGC sets the GC target to percent unless the environment sets GOGC.
func tuneGC(e env, percent int) {
	if e.getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}

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
	if namesOneOf(out, files) || namesOneOf(linkTarget(out), files) {
		return usageErr("%s %q is a file of the store %q: writing it would destroy the store", flagName, out, db)
	}
	if isDatabase(out) {
		return usageErr("%s %q is a SQLite database (a log, a views file of any server) or its -wal, -shm or -journal: writing it would destroy it", flagName, out)
	}
	return nil
}

// linkTarget returns the path a chain of symlinks at path ends at, even
// where nothing is there yet (filepath.EvalSymlinks fails on that): a
// write through the links creates the file there. The links of the
// directories on the way are resolved too (a linked directory). It is
// path when there are none.
func linkTarget(path string) string {
	for range 40 { // the kernel's own limit on a chain
		if dir, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
			path = filepath.Join(dir, filepath.Base(path))
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return path
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(path), dest)
		}
		path = dest
	}
	return path
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

// viewsNotLog refuses a --views that names the SQLite log db itself (or
// its -wal, -shm, a link to it): the read models would be written into
// the log's file, under its write lock, and a rebuild would swap tables
// in it. views is the --views flag ("" for the default, never the log).
func viewsNotLog(db, views string) error {
	if views == "" || db == "" || postgres.IsURL(db) {
		return nil
	}
	files := []string{db}
	if real, err := filepath.EvalSymlinks(db); err == nil && real != db {
		files = append(files, real)
	}
	if namesOneOf(views, files) {
		return usageErr("--views %q is the event log %q: the read models need a file of their own", views, db)
	}
	return nil
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
		real := linkTarget(f)
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
