package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/interactionledger/ledger/domain"
)

// Stats summarises a store's contents, for `ledger stats`.
type Stats struct {
	Events       int64
	Streams      int64
	LastPosition int64
	// Totals counts events per kind and type, sorted by kind then type.
	Totals []KindTotal
	// FileBytes is the size of the database file plus its WAL.
	FileBytes int64
}

// KindTotal is the number of events of one kind and type.
type KindTotal struct {
	Kind   string
	Type   domain.EventType
	Events int64
}

// Stats counts the store's events and streams. It scans the whole log, so
// it takes time proportional to its size. It returns domain.ErrUnavailable
// on storage faults and domain.ErrClosed after Close.
func (s *EventStore) Stats(ctx context.Context) (Stats, error) {
	if err := s.usable(); err != nil {
		return Stats{}, err
	}
	var st Stats
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", translate(err))
	}
	defer func() { _ = tx.Rollback() }()
	// Positions are gap-free from 1, so the last one is the event count.
	err = tx.QueryRowContext(ctx, `SELECT coalesce(max(position), 0), (SELECT count(*) FROM streams) FROM events`).
		Scan(&st.LastPosition, &st.Streams)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", translateCtx(ctx, err))
	}
	st.Events = st.LastPosition
	rows, err := tx.QueryContext(ctx, `SELECT kind, type, count(*) FROM events GROUP BY kind, type ORDER BY kind, type`)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", translateCtx(ctx, err))
	}
	defer rows.Close()
	for rows.Next() {
		var t KindTotal
		if err := rows.Scan(&t.Kind, &t.Type, &t.Events); err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
		st.Totals = append(st.Totals, t)
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", translateCtx(ctx, err))
	}
	if st.FileBytes, err = fileBytes(s.path, s.path+"-wal"); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

func fileBytes(paths ...string) (int64, error) {
	var n int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}
