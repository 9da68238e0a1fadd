package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/interactionledger/ledger/adapters/logcopy"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// viewsBuiltBy says, where a views file is missing, what makes one.
const viewsBuiltBy = "(serve builds it at start, ledger rebuild builds it)"

// openReadSide opens the log read-only (a server may be writing it) and
// the live views (--views, or beside the log), without the in-memory
// copy that serves target reads: these commands do not serve. Only a
// rebuild (build) creates a missing views file: verify and stats on a
// mistyped --views would otherwise build a fresh one and call it right.
// Only a rebuild opens the views with the log, which builds what is
// missing or of an older schema (it does not catch the file up: it
// rebuilds it next, and a catch-up of a file the log diverged from would
// stop the set with an error telling to rebuild): verify and stats
// inspect the file as it is, since a catch-up would show
// every file at a lag of 0 and apply a restored log's new events onto a
// file the log diverged from, which serve then no longer refuses.
func openReadSide(ctx context.Context, e env, db, views, kinds string, build bool, progress func(projections.Progress)) (*logStore, *projections.Set, error) {
	kindSet, err := parseKinds(kinds)
	if err != nil {
		return nil, nil, err
	}
	if err := viewsUsable(db, views); err != nil {
		return nil, nil, err
	}
	// The log first: with a --db that names no log (a typo, the default
	// ./data from another directory) the views file beside it is missing
	// too, and saying only that sent the operator to build one.
	store, err := openStore(ctx, db, storeOptions{readOnly: true}, cliLogger(e))
	if err != nil {
		return nil, nil, err
	}
	noteMoved(ctx, e, store, db)
	path := viewsPath(db, views)
	if !build {
		if _, err := os.Stat(path); err != nil {
			store.Close()
			return nil, nil, fmt.Errorf("views file %s: %w %s", path, err, viewsBuiltBy)
		}
	}
	var source domain.EventReader
	if build {
		source = store
	}
	set, err := projections.Open(ctx, projections.Config{Path: viewsPath(db, views), Kinds: kindSet, OnProgress: progress, MemoryRows: -1,
		NoCatchUp: build}, source, cliLogger(e))
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, set, nil
}

func runRebuild(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "rebuild", "[--projection NAME] [flags]")
	db := dbFlag(fs)
	views := viewsFlag(fs)
	kinds := kindsFlag(fs)
	name := fs.String("projection", "", "rebuild only this projection: "+strings.Join(projections.AllProjections, ", "))
	profile := fs.String("cpuprofile", "", "write a pprof CPU profile of the rebuild to this file")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	tuneGC(e, buildGCPercent)
	var names []string
	if *name != "" {
		if !slices.Contains(projections.AllProjections, *name) {
			return usageErr("--projection %q: want one of %s", *name, strings.Join(projections.AllProjections, ", "))
		}
		names = []string{*name}
	}
	if err := viewsUsable(*db, *views); err != nil {
		return err
	}
	if err := notStoreFile("--cpuprofile", *profile, *db, *views); err != nil {
		return err
	}
	stop, err := startCPUProfile(*profile)
	if err != nil {
		return err
	}
	defer stop()
	report, finish := progressReporter(e, "rebuild")
	defer finish()
	_, statErr := os.Stat(viewsPath(*db, *views))
	fresh := errors.Is(statErr, os.ErrNotExist)
	start := time.Now()
	store, set, err := openReadSide(ctx, e, *db, *views, *kinds, true, report)
	if errors.Is(err, projections.ErrDamaged) {
		fresh = true
		store, set, err = rebuildDamaged(ctx, e, *db, *views, *kinds, report)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	defer set.Close()
	// Opening a missing views file has just built every projection.
	if !fresh {
		if err := set.Rebuild(ctx, store, names, report); err != nil {
			return err
		}
	}
	head, _ := store.LastPosition(ctx)
	finish()
	fmt.Fprintf(e.stdout, "rebuilt %s up to position %d in %s\n", orAll(names), head, time.Since(start).Round(time.Millisecond))
	return nil
}

// rebuildDamaged sets a damaged views file aside (renamed with its -wal to
// ".damaged", for a post-mortem) and builds a fresh one in its place: the
// file is derived from the log, and SQLite repairs nothing in place. A
// server that had it open answers 503 until it is restarted (its views
// no longer name the file at the path).
func rebuildDamaged(ctx context.Context, e env, db, views, kinds string, progress func(projections.Progress)) (*logStore, *projections.Set, error) {
	path := viewsPath(db, views)
	if err := setDamagedAside(ctx, e, path); err != nil {
		return nil, nil, fmt.Errorf("set the damaged views file aside: %w", err)
	}
	return openReadSide(ctx, e, db, views, kinds, true, progress)
}

// setDamagedAside renames the views file at path and its -wal and -shm to
// a name no earlier one has (".damaged", ".damaged.2", ...), under the
// rebuild lock, and only if the file there is still damaged: another
// rebuild may have set it aside and built a new one meanwhile, which must
// not be set aside in turn.
func setDamagedAside(ctx context.Context, e env, path string) error {
	unlock, err := projections.LockRebuild(ctx, path, nil)
	if err != nil {
		return err
	}
	defer unlock()
	if !projections.Damaged(ctx, path) {
		return nil
	}
	aside, err := linkAside(path)
	if err != nil {
		return err
	}
	for _, sfx := range []string{"-wal", "-shm"} {
		if err := os.Rename(path+sfx, aside+sfx); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) { // gone if renamed aside
		return err
	}
	fmt.Fprintf(e.stdout, "the views file %s was damaged: set aside as %s, building a new one (restart a server using it)\n", path, aside)
	return nil
}

// linkAside links path to the first free name of ".damaged", ".damaged.2",
// ...: a link, unlike a rename, never replaces a file already there (an
// earlier damaged file kept for a post-mortem). On a file system without
// hard links (FAT, exFAT, some network and FUSE mounts) it renames path
// to the first name that does not exist instead: its caller holds the
// rebuild lock, so no other rebuild takes that name meanwhile.
func linkAside(path string) (string, error) {
	for n := 1; ; n++ {
		aside := path + ".damaged"
		if n > 1 {
			aside += "." + strconv.Itoa(n)
		}
		err := link(path, aside)
		if err == nil {
			return aside, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if _, serr := os.Lstat(aside); serr == nil {
			continue // taken: try the next name
		} else if !errors.Is(serr, fs.ErrNotExist) {
			return "", errors.Join(err, serr)
		}
		if rerr := os.Rename(path, aside); rerr != nil {
			return "", errors.Join(err, rerr)
		}
		return aside, nil
	}
}

// link is os.Link; a variable so that a test can stand for a file system
// without hard links.
var link = os.Link

func runAsOf(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "asof", "(--time RFC3339 | --position N) --out FILE.db [flags]")
	db := dbFlag(fs)
	kinds := kindsFlag(fs)
	at := fs.String("time", "", "the moment, RFC 3339: every event recorded at or before it")
	pos := fs.Int64("position", 0, "the position: every event up to and including it")
	out := fs.String("out", "", "the new SQLite file to write (must not exist)")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	tuneGC(e, buildGCPercent)
	posGiven := given(fs, "position")
	if (*at == "") == !posGiven {
		return usageErr("give exactly one of --time and --position")
	}
	if *out == "" {
		return usageErr("--out FILE.db is required")
	}
	if *out == "-" { // it wrote a SQLite file named "-"
		return usageErr("--out -: asof writes a SQLite file, never to stdout: give its path (./- for a file of that name)")
	}
	if err := notStoreFile("--out", *out, *db, ""); err != nil {
		return err
	}
	if err := outNamesAFile("--out", *out); err != nil {
		return err
	}
	if posGiven && *pos < 1 {
		return usageErr("--position %d: positions start at 1", *pos)
	}
	t, err := parseTime("time", *at)
	if err != nil {
		return err
	}
	var asOf time.Time // zero: by position
	if t != nil {
		asOf = domain.ClampTime(*t)
	}
	set, err := parseKinds(*kinds)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, *db, storeOptions{readOnly: true}, cliLogger(e))
	if err != nil {
		return err
	}
	defer store.Close()
	noteMoved(ctx, e, store, *db)
	report, finish := progressReporter(e, "asof")
	defer finish()
	stand, err := projections.BuildAsOf(ctx, store, *out, set, projections.AsOf{Position: *pos, Time: asOf}, report, cliLogger(e))
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		// In the flags' words, which name the variable that set them
		// (nameVariables): "invalid path" and "invalid position" did not.
		return usageErr("--%s %s", asOfFlag(ve.Field), ve.Reason)
	}
	if err != nil {
		return err
	}
	finish()
	fmt.Fprintf(e.stdout, "wrote %s as of position %d\n", *out, stand)
	return nil
}

// asOfFlag is the flag of a field projections.BuildAsOf refuses: the
// path is --out's, a position --position's.
func asOfFlag(field string) string {
	if field == "path" {
		return "out"
	}
	return field
}

func runVerify(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "verify", "[flags]")
	db := dbFlag(fs)
	views := viewsFlag(fs)
	kinds := kindsFlag(fs)
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	tuneGC(e, buildGCPercent)
	store, set, err := openReadSide(ctx, e, *db, *views, *kinds, false, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	defer set.Close()
	rep, err := set.Verify(ctx, store, "")
	if err != nil {
		return err
	}
	for _, name := range set.Names() {
		fmt.Fprintf(e.stdout, "%s: checked at position %d\n", name, rep.Checked[name])
	}
	for _, d := range rep.Differences {
		fmt.Fprintf(e.stdout, "DIFF %s.%s only in the %s: %s\n", d.Projection, d.Table, sideName(d.Side), d.Row)
	}
	if !rep.OK() {
		return fmt.Errorf("verify: %d differences between the read model and the log", len(rep.Differences))
	}
	head, err := store.LastPosition(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, verifiedLine(rep.Checked, head))
	return nil
}

// verifiedLine is verify's verdict once no difference was found: the read
// model equals the log up to the lowest position a projection was checked
// at, which says so when the log goes on past it (a views file behind, as
// a stopped server may leave it, is checked only as far as it goes).
func verifiedLine(checked map[string]int64, head int64) string {
	low := head
	for _, p := range checked {
		low = min(low, p)
	}
	if low >= head {
		return "OK: the read model equals the log"
	}
	return fmt.Sprintf("OK: the read model equals the log up to position %d; the log goes on to %d, "+
		"which a server applies when it starts (ledger rebuild brings the views file up to date now)", low, head)
}

func sideName(side string) string {
	if side == "live" {
		return "live read model"
	}
	return "recomputed log"
}

// StatsReport is what `ledger stats --json` prints.
type StatsReport struct {
	// LogID is the log's identity (domain.Identified).
	LogID        string           `json:"log"`
	Events       int64            `json:"events"`
	Streams      int64            `json:"streams"`
	LastPosition int64            `json:"last_position"`
	FileBytes    int64            `json:"file_bytes"`
	Totals       []KindTotal      `json:"totals"`
	Projections  []ProjectionStat `json:"projections"`
	// ViewsFile is the views file read; ViewsMissing is true when there is
	// none (Projections is then empty: stats builds no views file).
	ViewsFile    string `json:"views_file"`
	ViewsMissing bool   `json:"views_missing,omitempty"`
	// MovedTo and MovedAt, when the log is sealed (ledger import log),
	// are where it went (its password shown as xxxxx) and when.
	MovedTo string     `json:"moved_to,omitempty"`
	MovedAt *time.Time `json:"moved_at,omitempty"`
}

// readMoved fills MovedTo and MovedAt when store's log is sealed.
func (r *StatsReport) readMoved(ctx context.Context, store *logStore) error {
	m, moved, err := store.Moved(ctx)
	if moved {
		r.MovedTo, r.MovedAt = m.To, &m.At
	}
	return err
}

// KindTotal is the number of events of one kind and type.
type KindTotal struct {
	Kind   string           `json:"kind"`
	Type   domain.EventType `json:"type"`
	Events int64            `json:"events"`
}

// ProjectionStat is one projection's position and lag behind the log.
type ProjectionStat struct {
	Name    string `json:"name"`
	Applied int64  `json:"applied"`
	Lag     int64  `json:"lag"`
	// Log is the LogID of the log its tables were built from, empty when
	// the views file records none.
	Log string `json:"log,omitempty"`
	// Diverged, when not empty, says that the last event it applied is
	// not the log's event at that position (projections.Set.Diverged).
	Diverged string `json:"diverged,omitempty"`
}

func runStats(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "stats", "[flags]")
	db := dbFlag(fs)
	views := viewsFlag(fs)
	kinds := kindsFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	rep, err := readStats(ctx, e, *db, *views, *kinds)
	if err != nil {
		return err
	}
	// Lists are [] when empty (an empty log, no views file), never null.
	if rep.Totals == nil {
		rep.Totals = []KindTotal{}
	}
	if rep.Projections == nil {
		rep.Projections = []ProjectionStat{}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printStats(e, rep)
}

// readStats reads the log's figures and, when the views file exists, each
// projection's checkpoint. The checkpoints are read before the log's head,
// so a server appending meanwhile cannot make a lag negative: a negative
// lag is a views file ahead of its log.
func readStats(ctx context.Context, e env, db, views, kinds string) (StatsReport, error) {
	if err := viewsUsable(db, views); err != nil {
		return StatsReport{}, err
	}
	path := viewsPath(db, views)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		store, err := openStore(ctx, db, storeOptions{readOnly: true}, cliLogger(e))
		if err != nil {
			return StatsReport{}, err
		}
		defer store.Close()
		noteMoved(ctx, e, store, db)
		rep, err := store.stats(ctx)
		rep.LogID, rep.ViewsFile, rep.ViewsMissing = store.LogID(), path, true
		return rep, errors.Join(err, rep.readMoved(ctx, store))
	}
	store, set, err := openReadSide(ctx, e, db, views, kinds, false, nil)
	if err != nil {
		return StatsReport{}, err
	}
	defer store.Close()
	defer set.Close()
	var projs []ProjectionStat
	for _, name := range set.Names() {
		cp, err := set.Checkpoint(ctx, name)
		if err != nil {
			return StatsReport{}, err
		}
		from, err := set.BuiltFrom(ctx, name)
		if err != nil {
			return StatsReport{}, err
		}
		diverged, err := set.Diverged(ctx, store, name)
		if err != nil {
			return StatsReport{}, err
		}
		projs = append(projs, ProjectionStat{Name: name, Applied: cp, Log: from, Diverged: diverged})
	}
	rep, err := store.stats(ctx)
	rep.LogID = store.LogID()
	err = errors.Join(err, rep.readMoved(ctx, store))
	for i := range projs {
		projs[i].Lag = rep.LastPosition - projs[i].Applied
	}
	rep.Projections, rep.ViewsFile = projs, path
	return rep, err
}

func printStats(e env, r StatsReport) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "log\t%s\nevents\t%d\nstreams\t%d\nlast position\t%d\nfile size\t%.1f MiB\n",
		r.LogID, r.Events, r.Streams, r.LastPosition, float64(r.FileBytes)/(1<<20))
	for _, t := range r.Totals {
		fmt.Fprintf(tw, "%s %s\t%d\n", t.Kind, t.Type, t.Events)
	}
	if r.MovedAt != nil {
		fmt.Fprintf(tw, "moved\t%s\n", logcopy.Moved{To: r.MovedTo, At: *r.MovedAt}.Message())
	}
	if r.ViewsMissing {
		fmt.Fprintf(tw, "read models\tnone: no views file at %s %s\n", r.ViewsFile, viewsBuiltBy)
	}
	for _, p := range r.Projections {
		if p.Log != "" && p.Log != r.LogID {
			fmt.Fprintf(tw, "projection %s\tapplied %d, built from ANOTHER log, %s (serve refuses it; ledger rebuild)\n", p.Name, p.Applied, p.Log)
			continue
		}
		if p.Lag < 0 {
			fmt.Fprintf(tw, "projection %s\tapplied %d, AHEAD of the log by %d events: another log's views, or a log restored from an older copy (serve refuses it; ledger rebuild)\n", p.Name, p.Applied, -p.Lag)
			continue
		}
		if p.Diverged != "" {
			fmt.Fprintf(tw, "projection %s\tapplied %d, DIVERGED from the log: it %s: a log restored from an older copy that has grown since, or another log (serve refuses it; ledger rebuild)\n", p.Name, p.Applied, p.Diverged)
			continue
		}
		fmt.Fprintf(tw, "projection %s\tapplied %d, lag %d events\n", p.Name, p.Applied, p.Lag)
	}
	return tw.Flush()
}

func orAll(names []string) string {
	if len(names) == 0 {
		return "all projections"
	}
	return strings.Join(names, ", ")
}
