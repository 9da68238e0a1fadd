package projections

import (
	"cmp"
	"context"
	"slices"

	"github.com/interactionledger/ledger/domain"
)

// The memory model's "who liked it" lists: the actors projection held in
// memory beside counts and viewer (memory.go), at the same position.

// memList names one "who liked it" list; memActor one entry of it.
type (
	memList  struct{ target, kind int32 }
	memActor struct{ user, target, kind int32 }
)

// actorList is one list of actors, oldest first. An entry removed by a
// cancellation is marked (user -1) and the list compacted once half of it
// is marked, so a cancel on a target with many likes costs no copy.
type actorList struct {
	entries []actorEntry
	removed int
}

type actorEntry struct {
	pos, since int64 // position and unix milliseconds of the turn-on
	user       int32 // -1: removed
}

// addActor appends an actor to its list; pos must be past every position
// in it (events come in position order, and a load reads each list in it).
func (t *memTables) addActor(a memActor, pos, since int64) {
	key := memList{a.target, a.kind}
	l := t.actors[key]
	if l == nil {
		l = &actorList{}
		t.actors[key] = l
	}
	l.entries = append(l.entries, actorEntry{pos: pos, since: since, user: a.user})
	t.actorAt[a] = pos
	t.rows++
}

// removeActor takes an actor off its list, if on it.
func (t *memTables) removeActor(a memActor) {
	pos, ok := t.actorAt[a]
	if !ok {
		return
	}
	delete(t.actorAt, a)
	t.rows--
	l := t.actors[memList{a.target, a.kind}]
	i, _ := slices.BinarySearchFunc(l.entries, pos, byPos)
	l.entries[i].user = -1
	if l.removed++; l.removed*2 > len(l.entries) {
		l.entries = slices.DeleteFunc(l.entries, func(e actorEntry) bool { return e.user < 0 })
		l.removed = 0
	}
}

func byPos(e actorEntry, pos int64) int { return cmp.Compare(e.pos, pos) }

// readActors reads the actors table in its key order, so each list comes
// oldest first.
func (m *memModel) readActors(ctx context.Context, tx querier) error {
	rows, err := tx.QueryContext(ctx, `SELECT target_type, target_id, kind, position, user, since FROM actors
ORDER BY target_type, target_id, kind, position`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var ttype, tid, kind, user string
	var pos, since int64
	for rows.Next() {
		if err := rows.Scan(&ttype, &tid, &kind, &pos, &user, &since); err != nil {
			return err
		}
		k := m.kindIndex(kind)
		if k < 0 {
			continue
		}
		m.addActor(memActor{m.user(user), m.target(len(m.kinds), ttype, tid), int32(k)}, pos, since)
		if m.rows > m.maxRows {
			return errTooBig
		}
	}
	return rows.Err()
}

// actorRow is one actor as the model holds it.
type actorRow struct {
	user       string
	since, pos int64
}

// actorPage answers an Actors read from memory: up to n actors of kind
// on target t at positions below before, newest first, and the position
// the model is at; ok is false when the model cannot answer (the caller
// then reads SQLite).
func (m *memModel) actorPage(t domain.Target, kind string, n int, before int64) (out []actorRow, at int64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.answersLocked() {
		return nil, 0, false
	}
	at = m.atLocked()
	var buf [256]byte
	tid, known := m.targetIDs[string(targetMemKey(buf[:0], t.Type(), t.ID()))]
	l := m.actors[memList{tid, int32(m.kindIndex(kind))}]
	if !known || l == nil {
		return nil, at, true
	}
	i, _ := slices.BinarySearchFunc(l.entries, before, byPos)
	out = make([]actorRow, 0, min(n, i))
	for i--; i >= 0 && len(out) < n; i-- {
		if e := l.entries[i]; e.user >= 0 {
			out = append(out, actorRow{user: m.userNames[e.user], since: e.since, pos: e.pos})
		}
	}
	return out, at, true
}
