package projections

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/interactionledger/ledger/domain"
)

var collectionTable = &interactionTable{
	table: "collection",
	columns: `user TEXT NOT NULL, kind TEXT NOT NULL, position INTEGER NOT NULL,
		target_type TEXT NOT NULL, target_id TEXT NOT NULL, since INTEGER NOT NULL`,
	key: `user, kind, position`,
	indexes: []string{
		`CREATE UNIQUE INDEX IF NOT EXISTS %[1]s_target_g%[2]d ON %[1]s (user, kind, target_type, target_id)`,
		`CREATE INDEX IF NOT EXISTS %[1]s_type_g%[2]d ON %[1]s (user, kind, target_type, position)`,
	},
	delete: `user = ? AND kind = ? AND target_type = ? AND target_id = ?`,
	insert: `user, kind, position, target_type, target_id, since`,
	order: func(b *batch, c *change) sortKey {
		return sortKey{pack(b.userRank[c.key.user], b.kindRank[c.key.kind]), uint64(c.pos)}
	},
	delArgs: func(b *batch, c *change) []any {
		t := b.target(c.key.target)
		return []any{b.user(c.key), b.kind(c.key.kind), t.ttype, t.tid}
	},
	insArgs: func(args []any, v *boxed, c *change) []any {
		k := c.key
		return append(args, v.users[k.user], v.kinds[k.kind], c.pos, v.ttypes[k.target], v.tids[k.target], c.since)
	},
}

// Collection returns the targets user u turned kind k on for, newest
// first, only targets of targetType unless it is "", paginated like
// Actors. Errors: as Actors, plus a *domain.ValidationError (Field
// "target_type") for a malformed type.
func (s *Set) Collection(ctx context.Context, u domain.UserID, k domain.Kind, targetType string, limit int, cursor string) (Page[Item], error) {
	if err := s.readable(Collection); err != nil {
		return Page[Item]{}, err
	}
	if u.IsZero() {
		return Page[Item]{}, &domain.ValidationError{Field: "user", Reason: "required"}
	}
	if targetType != "" {
		if err := domain.ValidateTargetType(targetType); err != nil {
			return Page[Item]{}, err
		}
	}
	scope := collectionScope(u, k, targetType)
	limit, before, err := s.pageArgs(k, limit, scope, cursor)
	if err != nil {
		return Page[Item]{}, err
	}
	rows, err := s.queryCollection(ctx, u, k, targetType, before, limit+1)
	page, err := readPage(rows, err, limit, scanItem, func(pos, at int64) string { return makeCursor(scope, pos, at) })
	if err != nil {
		return Page[Item]{}, unreadable("read collection", err)
	}
	return page, nil
}

func scanItem(rows *sql.Rows) (it Item, pos, at int64, err error) {
	var typ, id string
	var since int64
	if err := rows.Scan(&typ, &id, &since, &it.Position, &at); err != nil {
		return it, 0, 0, err
	}
	if it.Target, err = domain.NewTarget(typ, id); err != nil {
		return it, 0, 0, fmt.Errorf("stored target: %w", err)
	}
	it.Since = time.UnixMilli(since).UTC()
	return it, it.Position, at, nil
}

// collectionScope names the list Collection(u, k, targetType, ...) in its
// cursors.
func collectionScope(u domain.UserID, k domain.Kind, targetType string) string {
	return "collection\x00" + u.String() + "\x00" + k.String() + "\x00" + targetType
}

func (s *Set) queryCollection(ctx context.Context, u domain.UserID, k domain.Kind, typ string, before int64, n int) (*sql.Rows, error) {
	q, args := collectionQuery(u, k, typ, before, n)
	return s.v.read.QueryContext(ctx, q, args...)
}

// collectionQuery is the statement of a collection page and its
// arguments. With a type, the page's positions are found in the type
// index first, as a subquery that reads nothing else (a covering index),
// and only those rows are read: asked for whole rows, SQLite walked the
// user's whole list by the primary key and filtered it by type, so a page
// of a type the user has few of read every row of the list (19 ms for a
// list of 145,000).
func collectionQuery(u domain.UserID, k domain.Kind, typ string, before int64, n int) (string, []any) {
	cols := `SELECT target_type, target_id, since, position, ` + checkpointColumn(Collection)
	if typ == "" {
		return cols + ` FROM collection
WHERE user = ? AND kind = ? AND position < ? ORDER BY position DESC LIMIT ?`, []any{u.String(), k.String(), before, n}
	}
	return cols + ` FROM collection WHERE user = ?1 AND kind = ?2 AND position IN (
	SELECT position FROM collection WHERE user = ?1 AND kind = ?2 AND target_type = ?3 AND position < ?4
	ORDER BY position DESC LIMIT ?5)
ORDER BY position DESC`, []any{u.String(), k.String(), typ, before, n}
}
