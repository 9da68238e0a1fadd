package main

import (
	"flag"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/interactionledger/ledger/domain"
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

// parseTime parses an optional RFC 3339 flag value (domain.ParseTime),
// nil when empty; a bad value is a usage error naming the flag.
func parseTime(flagName, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := domain.ParseTime(s)
	if err != nil {
		return nil, usageErr("--%s %q %v (such as 2026-11-22T10:00:00Z)", flagName, s, err)
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
