package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"

	"github.com/interactionledger/ledger/domain"
	"github.com/mattn/go-sqlite3"
)

// ErrNegativeCount means applying an event would take a count below zero:
// the read model disagrees with the log (a corrupted views file, or a
// store that delivered an event twice under two positions). The counts
// projection stops on it rather than clamp, which would hide the fault.
var ErrNegativeCount = fmt.Errorf("count would go below zero: %w", ErrInconsistent)

// ErrInconsistent means the read model disagrees with the log: a count
// would go negative, a cancelled interaction has no row, a turned-on one
// already has a row. The projection stops on it (see Set.Apply); a rebuild
// repairs a corrupted views file.
var ErrInconsistent = errors.New("read model disagrees with the log")

// countsProjection keeps per (target, kind) the number of streams that have
// the kind on, and the position of the last event that touched it.
type countsProjection struct{}

func (countsProjection) name() string     { return Counts }
func (countsProjection) version() int64   { return 1 }
func (countsProjection) tables() []string { return []string{"counts"} }

func (countsProjection) create(ctx context.Context, tx *sql.Tx, sfx string) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`
CREATE TABLE IF NOT EXISTS counts%s (
	target_type TEXT NOT NULL,
	target_id   TEXT NOT NULL,
	kind        TEXT NOT NULL,
	n           INTEGER NOT NULL CHECK (n >= 0),
	position    INTEGER NOT NULL,
	PRIMARY KEY (target_type, target_id, kind)
) WITHOUT ROWID`, sfx))
	return err
}

func (countsProjection) index(context.Context, *sql.Tx, string, int64) error { return nil }

// apply writes one upsert per (target, kind) of the batch. A live batch
// (announce not nil) is replayed event by event over the current counts of
// its targets, so that a would-be negative count is caught at the exact
// event and each event gets its target's counts right after it. A rebuild
// batch checks each key's lowest running sum against its current count.
func (countsProjection) apply(ctx context.Context, tx *sql.Tx, sfx string, b *batch, announce *[]AppliedEvent) error {
	table := "counts" + sfx
	if announce != nil {
		base, err := readBase(ctx, tx, table, b)
		if err != nil {
			return err
		}
		if err := replay(b, base, announce); err != nil {
			return err
		}
	} else if err := checkMinimums(ctx, tx, table, b); err != nil {
		return err
	}
	return writeDeltas(ctx, tx, table, b)
}

// checkMinimums fails when a key's count would dip below zero within the
// batch. Only keys whose running sum goes negative need their current
// count read.
func checkMinimums(ctx context.Context, tx *sql.Tx, table string, b *batch) error {
	var stmt *sql.Stmt
	for _, d := range b.deltas {
		if d.min >= 0 {
			continue
		}
		var cur int64
		if !b.fresh {
			if stmt == nil {
				var err error
				stmt, err = tx.PrepareContext(ctx, fmt.Sprintf(
					`SELECT n FROM %s WHERE target_type = ? AND target_id = ? AND kind = ?`, table))
				if err != nil {
					return err
				}
				defer stmt.Close()
			}
			t, k := b.target(d.key.target), b.kind(d.key.kind)
			err := stmt.QueryRowContext(ctx, t.ttype, t.tid, k).Scan(&cur)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("counts: read %s/%s %s: %w", t.ttype, t.tid, k, err)
			}
		}
		if cur+d.min < 0 {
			t, k := b.target(d.key.target), b.kind(d.key.kind)
			return fmt.Errorf("counts: %s/%s %s at %d%+d: %w", t.ttype, t.tid, k, cur, d.min, ErrNegativeCount)
		}
	}
	return nil
}

// readBase returns the current counts of every target the batch touches
// (all kinds, so announcements carry the whole target).
func readBase(ctx context.Context, tx *sql.Tx, table string, b *batch) (map[targetKey]map[string]int64, error) {
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf(
		`SELECT kind, n FROM %s WHERE target_type = ? AND target_id = ?`, table))
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	base := make(map[targetKey]map[string]int64)
	for _, d := range b.deltas {
		t := b.target(d.key.target)
		if _, done := base[t]; done {
			continue
		}
		if b.fresh {
			base[t] = map[string]int64{}
			continue
		}
		m, err := queryCounts(ctx, stmt, t)
		if err != nil {
			return nil, fmt.Errorf("counts: read %s/%s: %w", t.ttype, t.tid, err)
		}
		base[t] = m
	}
	return base, nil
}

func queryCounts(ctx context.Context, stmt *sql.Stmt, t targetKey) (map[string]int64, error) {
	rows, err := stmt.QueryContext(ctx, t.ttype, t.tid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		m[k] = n
	}
	return m, rows.Err()
}

// replay walks the batch over the base counts, failing at the first event
// that would take a count below zero.
func replay(b *batch, base map[targetKey]map[string]int64, announce *[]AppliedEvent) error {
	for _, e := range b.events {
		m := base[targetKey{e.Target.Type(), e.Target.ID()}]
		k := e.Kind.String()
		if e.On() {
			m[k]++
		} else {
			m[k]--
		}
		if m[k] < 0 {
			return fmt.Errorf("counts: event %d (%s %s %s by %s): %w",
				e.Position, e.Type, e.Kind, e.Target, e.User, ErrNegativeCount)
		}
		if announce != nil {
			*announce = append(*announce, AppliedEvent{Event: e, Counts: maps.Clone(m)})
		}
	}
	return nil
}

// writeDeltas adds each delta to its row. SQLite checks the CHECK
// constraint on the row to insert before it sees the conflict, so the
// inserted value is clamped and the update adds the real delta; the callers
// have already made sure no count goes below zero.
func writeDeltas(ctx context.Context, tx *sql.Tx, table string, b *batch) error {
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf(`
INSERT INTO %s (target_type, target_id, kind, n, position) VALUES (?1, ?2, ?3, max(?4, 0), ?5)
ON CONFLICT (target_type, target_id, kind)
DO UPDATE SET n = n + ?4, position = max(position, excluded.position)`, table))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, d := range b.deltas {
		t, k := b.target(d.key.target), b.kind(d.key.kind)
		if _, err := stmt.ExecContext(ctx, t.ttype, t.tid, k, d.n, d.pos); err != nil {
			if violates(err, sqlite3.ErrConstraintCheck) {
				err = fmt.Errorf("%w (%v)", ErrNegativeCount, err)
			}
			return fmt.Errorf("counts: write %s/%s %s: %w", t.ttype, t.tid, k, err)
		}
	}
	return nil
}

// fillKinds returns counts with every configured kind present.
func fillKinds(m map[string]int64, kinds domain.KindSet) map[string]int64 {
	out := make(map[string]int64, len(kinds.Names()))
	for _, k := range kinds.Names() {
		out[k] = m[k]
	}
	return out
}
