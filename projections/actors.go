package projections

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/interactionledger/ledger/domain"
)

var actorsTable = &interactionTable{
	table: "actors",
	columns: `target_type TEXT NOT NULL, target_id TEXT NOT NULL, kind TEXT NOT NULL,
		position INTEGER NOT NULL, user TEXT NOT NULL, since INTEGER NOT NULL`,
	key: `target_type, target_id, kind, position`,
	indexes: []string{
		`CREATE UNIQUE INDEX IF NOT EXISTS %[1]s_user_g%[2]d ON %[1]s (target_type, target_id, kind, user)`,
	},
	delete: `target_type = ? AND target_id = ? AND kind = ? AND user = ?`,
	insert: `target_type, target_id, kind, position, user, since`,
	order: func(b *batch, c *change) sortKey {
		return sortKey{pack(b.targetRank[c.key.target], b.kindRank[c.key.kind]), uint64(c.pos)}
	},
	delArgs: func(b *batch, c *change) []any {
		t := b.target(c.key.target)
		return []any{t.ttype, t.tid, b.kind(c.key.kind), b.user(c.key)}
	},
	insArgs: func(args []any, v *boxed, c *change) []any {
		k := c.key
		return append(args, v.ttypes[k.target], v.tids[k.target], v.kinds[k.kind], c.pos, v.users[k.user], c.since)
	},
}

// Actors returns who turned kind k on for target t, newest first, limit
// per page (0 means DefaultLimit), continuing after cursor ("" for the
// first page). Errors: *domain.ValidationError for a zero target, a limit
// outside 0..MaxLimit or a bad cursor (Field "cursor"); an error wrapping
// domain.ErrUnknownKind for a kind that is not configured; SQLite's error.
func (s *Set) Actors(ctx context.Context, t domain.Target, k domain.Kind, limit int, cursor string) (Page[Actor], error) {
	if err := s.readable(Actors); err != nil {
		return Page[Actor]{}, err
	}
	if t.IsZero() {
		return Page[Actor]{}, &domain.ValidationError{Field: "target", Reason: "required"}
	}
	scope := actorsScope(t, k)
	limit, before, err := s.pageArgs(k, limit, scope, cursor)
	if err != nil {
		return Page[Actor]{}, err
	}
	next := func(pos, at int64) string { return makeCursor(scope, pos, at) }
	if rows, at, ok := s.mem.actorPage(t, k.String(), limit+1, before); ok {
		return actorsFromMemory(rows, limit, func(pos int64) string { return next(pos, at) })
	}
	rows, err := s.v.read.QueryContext(ctx, `SELECT user, since, position, `+checkpointColumn(Actors)+` FROM actors
WHERE target_type = ? AND target_id = ? AND kind = ? AND position < ?
ORDER BY position DESC LIMIT ?`, t.Type(), t.ID(), k.String(), before, limit+1)
	page, err := readPage(rows, err, limit, scanActor, next)
	if err != nil {
		return Page[Actor]{}, unreadable("read actors", err)
	}
	return page, nil
}

// actorsFromMemory makes a page of the memory model's rows (up to
// limit+1, newest first), as readPage does of SQLite's.
func actorsFromMemory(rows []actorRow, limit int, next func(int64) string) (Page[Actor], error) {
	var page Page[Actor]
	if len(rows) > 0 {
		page.Items = make([]Actor, 0, min(limit, len(rows)))
	}
	for _, r := range rows[:min(limit, len(rows))] {
		u, err := domain.NewUserID(r.user)
		if err != nil {
			return Page[Actor]{}, fmt.Errorf("read actors: stored user: %w", err)
		}
		page.Items = append(page.Items, Actor{User: u, Since: time.UnixMilli(r.since).UTC(), Position: r.pos})
	}
	if len(rows) > limit {
		page.Next = next(page.Items[limit-1].Position)
	}
	return page, nil
}

func scanActor(rows *sql.Rows) (a Actor, pos, at int64, err error) {
	var user string
	var since int64
	if err := rows.Scan(&user, &since, &a.Position, &at); err != nil {
		return a, 0, 0, err
	}
	if a.User, err = domain.NewUserID(user); err != nil {
		return a, 0, 0, fmt.Errorf("stored user: %w", err)
	}
	a.Since = time.UnixMilli(since).UTC()
	return a, a.Position, at, nil
}

// actorsScope names the list Actors(t, k, ...) in its cursors.
func actorsScope(t domain.Target, k domain.Kind) string {
	return "actors\x00" + t.String() + "\x00" + k.String()
}

// checkpointColumn is a column that reads projection name's checkpoint
// in the snapshot of the statement it is in: the position a page was
// read at.
func checkpointColumn(name string) string {
	return `(SELECT position FROM checkpoints WHERE projection = '` + name + `')`
}
