package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/domain"
)

// Stats summarises a store's contents, for `ledger stats`.
type Stats struct {
	Events       int64
	Streams      int64
	LastPosition int64
	// Totals counts events per kind and type, sorted by kind then type
	// in byte order (the SQLite store's order), whatever the collation.
	Totals []KindTotal
	// Bytes is the size of the store's tables with their indexes.
	Bytes int64
}

// KindTotal is the number of events of one kind and type.
type KindTotal struct {
	Kind   string
	Type   domain.EventType
	Events int64
}

// Stats counts the store's events and streams in one repeatable-read
// transaction. It scans the whole log, so it takes time proportional to
// its size. It returns domain.ErrUnavailable when the database fails and
// domain.ErrClosed after Close.
func (s *EventStore) Stats(ctx context.Context) (Stats, error) {
	if err := s.usable(); err != nil {
		return Stats{}, err
	}
	var st Stats
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			// Positions are gap-free from 1, so the head is the event count.
			err := tx.QueryRow(ctx, `SELECT (SELECT position FROM log_head), (SELECT count(*) FROM streams),
				(SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
				 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r')::bigint`).
				Scan(&st.LastPosition, &st.Streams, &st.Bytes)
			if err != nil {
				return err
			}
			st.Events = st.LastPosition
			// Byte order (COLLATE "C"), as SQLite sorts: the database's
			// collation (en_US, ICU) sorted "like_x" before "like2".
			rows, err := tx.Query(ctx, `SELECT kind, type, count(*) FROM events GROUP BY kind, type
				ORDER BY kind COLLATE "C", type COLLATE "C"`)
			if err != nil {
				return err
			}
			var t KindTotal
			_, err = pgx.ForEachRow(rows, []any{&t.Kind, &t.Type, &t.Events}, func() error {
				st.Totals = append(st.Totals, t)
				return nil
			})
			return err
		})
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", translate(ctx, err))
	}
	return st, nil
}
