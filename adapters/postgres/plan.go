package postgres

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/domain"
)

// plan is one group commit's view of the log, as read under the head lock,
// and the rows its accepted appends write. Each append is checked against
// it in turn and, when accepted, added to it, so that appends of one batch
// see each other exactly as if they had committed one by one.
type plan struct {
	recorded time.Time
	behind   time.Duration // how far the clock was behind the log's last recorded_at
	head     int64         // last position handed out
	keyHead  int64         // last stream key handed out

	known map[streamKey]streamInfo   // streams of the batch, as stored
	keys  map[[2]string]bool         // (user, key) pairs recorded
	ids   map[[16]byte]bool          // event ids stored
	snaps map[streamKey]*streamWrite // streams this transaction writes
	order []streamKey                // snaps in first-write order

	ev  eventCols
	rec keyColumns
}

type streamWrite struct {
	key, version, last int64
	state              string
}

type eventCols struct {
	positions, streamKeys, versions, occurred, recorded []int64
	ids                                                 [][16]byte
	types, kinds                                        []string
	metadata                                            []*string
}

type keyColumns struct {
	users, keys, hashes, states  []string
	changed, active              []bool
	versions, positions, created []int64
}

type streamColumns struct {
	keys, versions, last      []int64
	users, types, ids, states []string
}

func newPlan() *plan {
	return &plan{
		known: make(map[streamKey]streamInfo),
		keys:  make(map[[2]string]bool),
		ids:   make(map[[16]byte]bool),
		snaps: make(map[streamKey]*streamWrite),
	}
}

// recordAt sets the time the plan's events are recorded at: now, the
// database's clock read under the head lock, but never before last, the
// log's last event's. One clock for every node of a cluster, read where
// each commit takes its place in the log, and never stepping back: recorded
// times follow positions, which a cut of the log by time (asof --time)
// needs, whatever the nodes' clocks say (a node's clock minutes off, or
// its commit's time taken before it waited for another node's).
func (p *plan) recordAt(now, last int64) {
	p.recorded = time.Unix(0, max(now, last)).UTC()
	p.behind = time.Duration(max(0, last-now))
}

// decide checks each append of batch in order and adds the accepted ones
// to the plan; a rejected append fails alone.
func (p *plan) decide(batch []*request) ([]result, CommitStats) {
	results := make([]result, len(batch))
	stats := CommitStats{Appends: len(batch), ClockBehind: p.behind, RecordedAt: p.recorded}
	for i, r := range batch {
		if err := p.check(r); err != nil {
			r.Written(err)
			results[i].Err = err
			stats.Failed++
			continue
		}
		results[i].Res = p.add(r)
		r.Written(nil)
		if r.Decide != nil && len(r.Rows) > 0 {
			r.Decided.Position = results[i].Res.LastPosition
		}
		stats.Events += len(r.Rows)
	}
	return results, stats
}

// decideCommand decides r's command (r.Decide) against its stream as the
// plan holds it, and rewrites r to the append it makes (DecideAt).
func (p *plan) decideCommand(r *request) error {
	cur := p.current(keyOf(r.Req.Stream))
	state, err := domain.ParseStoredState(cur.state)
	if err != nil {
		return fmt.Errorf("append %s: %w", r.Req.Stream, err)
	}
	version, err := r.DecideAt(domain.Snapshot{Version: cur.version, LastPosition: cur.last, State: state}, p.stored)
	if version > 0 {
		r.Rows[0].version = version
	}
	return err
}

// stored reports whether an event with id is stored or planned: the
// check round trip looked up the ids the batch's commands follow
// (checkQuery).
func (p *plan) stored(id uuid.UUID) (bool, error) { return p.ids[id], nil }

func keyOf(st domain.StreamID) streamKey {
	return streamKey{st.User.String(), st.Target.Type(), st.Target.ID()}
}

// current returns the stream as of the plan: as stored, or as an earlier
// append of the batch leaves it.
func (p *plan) current(k streamKey) streamInfo {
	if w, ok := p.snaps[k]; ok {
		return streamInfo{key: w.key, version: w.version, last: w.last, state: w.state}
	}
	return p.known[k]
}

// check applies the port's rules in the SQLite store's order: version,
// idempotency key, event ids. A decided append checks its key first and
// is then decided against its stream (see keyTaken).
func (p *plan) check(r *request) error {
	if r.Decide != nil {
		// A recorded key comes before the expected version: the request
		// that recorded it (another node's, with the same key) may have
		// moved the stream past that version, and this retry of it is
		// answered that request's outcome (ErrIdempotencyKeyTaken, which
		// Ledger.Set replays), not a failed precondition.
		if err := p.keyTaken(r); err != nil {
			return err
		}
		if err := p.decideCommand(r); err != nil {
			return err
		}
	}
	req := r.Req
	st := req.Stream
	if cur := p.current(keyOf(st)); cur.version != req.ExpectedVersion {
		return fmt.Errorf("append %s: at version %d, not %d: %w",
			st, cur.version, req.ExpectedVersion, domain.ErrVersionConflict)
	}
	if err := p.keyTaken(r); err != nil {
		return err
	}
	seen := make(map[[16]byte]bool, len(r.Rows))
	for _, e := range r.Rows {
		if p.ids[e.id] || seen[e.id] {
			return fmt.Errorf("append %s: event %s: %w", st, uuid.UUID(e.id), domain.ErrDuplicateEvent)
		}
		seen[e.id] = true
	}
	return nil
}

// keyTaken is ErrIdempotencyKeyTaken when r's key is recorded, in the
// database or by an earlier append of the batch.
func (p *plan) keyTaken(r *request) error {
	if rec := r.Req.Idempotency; rec != nil && p.keys[[2]string{rec.User.String(), rec.Key}] {
		return fmt.Errorf("append %s: key %q: %w", r.Req.Stream, rec.Key, domain.ErrIdempotencyKeyTaken)
	}
	return nil
}

// add plans the rows of an accepted append and returns its result.
func (p *plan) add(r *request) domain.AppendResult {
	res := domain.AppendResult{RecordedAt: p.recorded}
	if n := len(r.Rows); n > 0 {
		p.addEvents(r)
		res.LastPosition = p.head
	}
	if rec := r.Req.Idempotency; rec != nil {
		p.addRecord(*rec, res.LastPosition)
	}
	return res
}

func (p *plan) addEvents(r *request) {
	k := keyOf(r.Req.Stream)
	cur := p.current(k)
	if cur.key == 0 {
		p.keyHead++
		cur.key = p.keyHead
	}
	recorded := p.recorded.UnixNano()
	e := &p.ev
	for _, row := range r.Rows {
		p.head++
		p.ids[row.id] = true
		e.positions = append(e.positions, p.head)
		e.ids = append(e.ids, row.id)
		e.streamKeys = append(e.streamKeys, cur.key)
		e.versions = append(e.versions, row.version)
		e.types = append(e.types, row.typ)
		e.kinds = append(e.kinds, row.kind)
		e.occurred = append(e.occurred, row.occurred)
		e.recorded = append(e.recorded, recorded)
		e.metadata = append(e.metadata, row.metadata)
	}
	w, ok := p.snaps[k]
	if !ok {
		w = &streamWrite{key: cur.key}
		p.snaps[k] = w
		p.order = append(p.order, k)
	}
	w.version, w.last, w.state = r.Rows[len(r.Rows)-1].version, p.head, r.Req.State.String()
}

// addRecord plans rec; lastPosition, when not 0, replaces the outcome's
// position, as domain.AppendRequest documents.
func (p *plan) addRecord(rec domain.IdempotencyRecord, lastPosition int64) {
	p.keys[[2]string{rec.User.String(), rec.Key}] = true
	out := rec.Outcome
	if lastPosition != 0 {
		out.Position = lastPosition
	}
	created := rec.CreatedAt
	if created.IsZero() {
		created = p.recorded
	}
	k := &p.rec
	k.users = append(k.users, rec.User.String())
	k.keys = append(k.keys, rec.Key)
	k.hashes = append(k.hashes, rec.RequestHash)
	k.changed = append(k.changed, out.Changed)
	k.active = append(k.active, out.Active)
	k.states = append(k.states, out.State.String())
	k.versions = append(k.versions, out.StreamVersion)
	k.positions = append(k.positions, out.Position)
	k.created = append(k.created, created.UnixNano())
}

// streamColumns returns the snapshots to write, one row per stream.
func (p *plan) streamColumns() streamColumns {
	var c streamColumns
	for _, k := range p.order {
		w := p.snaps[k]
		c.keys = append(c.keys, w.key)
		c.users = append(c.users, k.user)
		c.types = append(c.types, k.targetType)
		c.ids = append(c.ids, k.targetID)
		c.versions = append(c.versions, w.version)
		c.last = append(c.last, w.last)
		c.states = append(c.states, w.state)
	}
	return c
}
