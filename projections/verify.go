package projections

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/sqlitedsn"
)

// MaxDifferences bounds how many differing rows Verify reports per table.
const MaxDifferences = 100

// Difference is one row that is in the live read model but not in the one
// recomputed from the log (Side "live"), or the other way round (Side
// "log").
type Difference struct {
	Projection string
	Table      string
	Side       string
	Row        string // "column=value, ..." of the row
}

// Report is the outcome of Verify: for each projection the position it was
// checked at, and the rows that differ (empty when the read model is
// right).
type Report struct {
	Checked     map[string]int64
	Differences []Difference
}

// OK reports whether no difference was found.
func (r Report) OK() bool { return len(r.Differences) == 0 }

// Verify recomputes every projection of s from store into a temporary file
// in dir (os.TempDir() when ""), each at exactly the position its live
// checkpoint stands at, and compares them row by row with the live tables,
// read in one snapshot. Verify does not block the live applier. Errors: the
// store's or SQLite's error, or ctx's error; differences are data, not
// errors.
func (s *Set) Verify(ctx context.Context, store domain.EventReader, dir string) (Report, error) {
	tmp, err := os.MkdirTemp(dir, "ledger-verify-")
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	defer os.RemoveAll(tmp)
	low, err := s.LowestCheckpoint(ctx)
	if err != nil {
		low = 0 // compare catches every projection up from 0
	}
	fresh, err := open(ctx, Config{Path: filepath.Join(tmp, "views"), Kinds: s.cfg.Kinds, Projections: s.cfg.Projections, FoldKeys: s.cfg.FoldKeys}, scratch, s.log)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	defer fresh.Close()
	built, err := fresh.buildAll(ctx, store, low, nil)
	if err != nil {
		return Report{}, fmt.Errorf("verify: build: %w", err)
	}
	r, err := s.compare(ctx, store, filepath.Join(tmp, "views"), built)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	return r, nil
}

// compare attaches the live file to a connection of the recomputed one and,
// inside one read snapshot of the live file, catches each recomputed
// projection up to its live checkpoint and diffs the tables.
func (s *Set) compare(ctx context.Context, store domain.EventReader, freshPath string, built int64) (Report, error) {
	// Not dsn(): its _txlock=immediate would take the live file's write
	// lock with the transaction below.
	db, err := sql.Open("sqlite3", sqlitedsn.File(freshPath, url.Values{
		"_busy_timeout": {strconv.Itoa(busyTimeout)}, "_journal_mode": {"OFF"}, "_synchronous": {"OFF"},
	}))
	if err != nil {
		return Report{}, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return Report{}, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS live`, s.cfg.Path); err != nil {
		return Report{}, err
	}
	// A deferred transaction: reading live takes a snapshot of it without
	// its write lock; writes go to the recomputed file only.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return Report{}, err
	}
	defer tx.Rollback()
	r := Report{Checked: map[string]int64{}}
	for _, p := range s.projs {
		cp, _, _, err := checkpoint(ctx, tx, p.name()) // unqualified: main, the recomputed file
		if err != nil {
			return Report{}, err
		}
		live, version, err := liveCheckpoint(ctx, tx, p.name())
		if err != nil {
			return Report{}, err
		}
		if d, bad := s.badCheckpoint(ctx, tx, store, p, live, version); bad {
			// Not comparable: the server refuses such a file (ErrAhead, or
			// a rebuild for another schema version).
			r.Checked[p.name()] = live
			r.Differences = append(r.Differences, d)
			continue
		}
		if err := catchUp(ctx, tx, store, p, cp, live); err != nil {
			return Report{}, fmt.Errorf("%s: catch up to %d: %w", p.name(), live, err)
		}
		r.Checked[p.name()] = live
		for _, t := range p.tables() {
			d, err := diffTable(ctx, tx, p.name(), t)
			if err != nil {
				return Report{}, fmt.Errorf("%s: diff %s: %w", p.name(), t, err)
			}
			r.Differences = append(r.Differences, d...)
		}
	}
	return r, nil
}

// liveCheckpoint reads a projection's checkpoint in the live file; a
// projection without one is at position 0 of the current version.
func liveCheckpoint(ctx context.Context, tx querier, name string) (pos, version int64, err error) {
	err = tx.QueryRowContext(ctx, `SELECT position, version FROM live.checkpoints WHERE projection = ?`, name).Scan(&pos, &version)
	if err == sql.ErrNoRows {
		p, _ := projectionByName(name)
		return 0, int64(p.version()), nil
	}
	return pos, version, err
}

// badCheckpoint reports a live checkpoint the tables cannot be checked at:
// of tables built from another log (domain.Identified), beyond the log's
// last position (read after the live snapshot, so an append racing the
// check is not taken for one), naming as its last applied event one the
// log does not hold there (Diverged), or of another schema version.
func (s *Set) badCheckpoint(ctx context.Context, tx querier, store domain.EventReader, p projection, live, version int64) (Difference, bool) {
	d := Difference{Projection: p.name(), Table: "checkpoints", Side: "live"}
	if version != int64(p.version()) {
		d.Row = fmt.Sprintf("version=%d, want %d (ledger rebuild)", version, p.version())
		return d, true
	}
	if log := domain.LogIDOf(store); log != "" {
		if from, err := builtFrom(ctx, tx, "live", p.name()); err == nil && from != "" && from != log {
			d.Row = fmt.Sprintf("log=%s, built from another log than this one (%s): ledger rebuild", from, log)
			return d, true
		}
	}
	if head, err := store.LastPosition(ctx); err == nil && live > head {
		d.Row = fmt.Sprintf("position=%d, beyond the log's last position %d (another log's views, or a log restored from an older copy: ledger rebuild)", live, head)
		return d, true
	}
	if what, err := s.Diverged(ctx, store, p.name()); err == nil && what != "" {
		d.Row = what + " (" + divergedRemedy + ")"
		return d, true
	}
	return Difference{}, false
}

// catchUp applies the events in (from, to] to p's recomputed tables.
func catchUp(ctx context.Context, tx querier, store domain.EventReader, p projection, from, to int64) error {
	if to <= from {
		return nil
	}
	b := newFold()
	for e, err := range store.ReadEvents(ctx, domain.EventFilter{After: from, Limit: int(to - from)}) {
		if err != nil {
			return err
		}
		if e.Position <= to {
			b.add(e.Toggle())
		}
	}
	if b.n == 0 {
		return nil
	}
	return p.apply(ctx, tx, "", b, nil)
}

// diffTable returns the rows of table that only one side has.
func diffTable(ctx context.Context, tx querier, projection, table string) ([]Difference, error) {
	var out []Difference
	for _, side := range []struct{ name, a, b string }{{"live", "live.", "main."}, {"log", "main.", "live."}} {
		rows, err := tx.QueryContext(ctx, fmt.Sprintf(
			`SELECT * FROM %[1]s%[3]s EXCEPT SELECT * FROM %[2]s%[3]s LIMIT %[4]d`, side.a, side.b, table, MaxDifferences))
		if err != nil {
			return nil, err
		}
		rendered, err := render(rows)
		if err != nil {
			return nil, err
		}
		for _, row := range rendered {
			out = append(out, Difference{Projection: projection, Table: table, Side: side.name, Row: row})
		}
	}
	return out, nil
}

func render(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(cols))
		for i, c := range cols {
			parts[i] = fmt.Sprintf("%s=%v", c, vals[i])
		}
		out = append(out, strings.Join(parts, ", "))
	}
	return out, rows.Err()
}
