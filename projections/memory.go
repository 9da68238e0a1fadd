package projections

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// DefaultMemoryRows is Config.MemoryRows's default: about 125 MB of heap
// (BenchmarkMemoryModelSize: ~63 bytes a row), which holds about a million
// likes (each is a viewer row and an actor row).
const DefaultMemoryRows = 2_000_000

// memState says whether the memory model may answer reads.
type memState int

const (
	memUnloaded memState = iota // never loaded: reads use SQLite
	memValid                    // answers reads, at position at
	memStale                    // the views file moved under it: reads use SQLite until a reload
	memOff                      // too big or failed to load: reads use SQLite for good
)

// memModel is the counts, viewer and actors projections held in memory, at
// one position, so that target reads (a feed page is ~100 key lookups in
// SQLite) cost map lookups instead, and a page of "who liked it" is a
// slice walked backwards instead of a range read through SQLite. It is a
// copy of what the views file holds and never a source: every change is
// made after the views file committed it, by the goroutine that committed
// it, before the Set announces the new position (see Set.Apply), so a
// reader who waited for a position finds the model at it or later.
//
// The projections may commit in separate transactions (Set.Apply); the
// model takes each batch only once all three have committed it (at is the
// lowest of the checkpoints), so one read sees the state of one position,
// and it answers only while all three are at that position.
// The model checks that each commit starts where the model left that
// projection; when another process (ledger rebuild, a second server) has
// moved a checkpoint, or this one rebuilt and swapped tables, the model is
// stale and reloaded from one snapshot of the views file. Past maxRows rows
// it turns itself off and reads go to SQLite, as they do whenever it is
// not valid.
//
// It is safe for concurrent use: writers (apply, load) are serialized by
// writeMu; mu makes each read one consistent snapshot.
type memModel struct {
	kinds   []string // configured kinds; a kind's index is its bit in viewer
	maxRows int
	log     *slog.Logger
	// flagMaps[flags] is the Viewer map of those flags, shared by every
	// answer (nil with more than 6 kinds); zeroCounts the Counts of a
	// target without events.
	flagMaps   []map[string]bool
	zeroCounts map[string]int64

	writeMu     sync.Mutex
	lastLoad    time.Time     // when the model last loaded or tried to
	reloadEvery time.Duration // how often a stale model tries to reload

	mu    sync.RWMutex
	state memState
	lane  [lanes]int64 // checkpoints of counts, viewer and actors the model has taken
	memTables
}

// memTables are the model's rows. Targets and users are numbered once,
// so that a feed page hashes its viewer's name once and each target's
// name once, not a (user, target) string per target.
type memTables struct {
	targetIDs map[string]int32 // type \x00 id -> target number
	n         []int64          // counts: target number * len(kinds) + kind index
	pos       []int64          // per target number: the last event of any kind that touched it
	// cmaps holds, per target number, the Counts map answers share; built
	// by the first read after a change (under the read lock, hence
	// atomic), dropped by the change.
	cmaps     []atomic.Pointer[map[string]int64]
	userIDs   map[string]int32
	userNames []string           // per user number
	viewer    map[memPair]uint64 // kinds on (bits) per (user, target)
	// actors holds, per (target, kind), who has the kind on, in position
	// order; actorAt the position of each (user, target, kind) in it.
	actors  map[memList]*actorList
	actorAt map[memActor]int64
	rows    int // targets + users + viewer entries + actors
}

type memPair struct{ user, target int32 }

func newMemTables() memTables {
	return memTables{targetIDs: map[string]int32{}, userIDs: map[string]int32{}, viewer: map[memPair]uint64{},
		actors: map[memList]*actorList{}, actorAt: map[memActor]int64{}}
}

// laneNames are the projections the model copies; memModel.lane holds
// their checkpoints in this order.
var laneNames = [...]string{Counts, Viewer, Actors}

const lanes = len(laneNames)

func laneOf(name string) (int, bool) {
	i := slices.Index(laneNames[:], name)
	return i, i >= 0
}

func newMemModel(kinds domain.KindSet, maxRows int, log *slog.Logger) *memModel {
	m := &memModel{kinds: kinds.Names(), maxRows: maxRows, log: log, reloadEvery: time.Second,
		zeroCounts: kinds.Counts(nil)}
	if maxRows < 0 || len(m.kinds) > 64 {
		m.state = memOff
	}
	if len(m.kinds) <= 6 {
		m.flagMaps = make([]map[string]bool, 1<<len(m.kinds))
		for f := range m.flagMaps {
			m.flagMaps[f] = m.buildFlags(uint64(f))
		}
	}
	return m
}

func (m *memModel) buildFlags(flags uint64) map[string]bool {
	out := make(map[string]bool, len(m.kinds))
	for k, name := range m.kinds {
		out[name] = flags&(1<<k) != 0
	}
	return out
}

// countsOf returns target t's shared Counts map. The caller holds the
// read lock, so n does not change meanwhile; two readers may both build
// it, and both maps are equal.
func (m *memModel) countsOf(t int32) map[string]int64 {
	if p := m.cmaps[t].Load(); p != nil {
		return *p
	}
	out := make(map[string]int64, len(m.kinds))
	for k, name := range m.kinds {
		out[name] = m.n[int(t)*len(m.kinds)+k]
	}
	m.cmaps[t].CompareAndSwap(nil, &out)
	return out
}

func (m *memModel) kindIndex(k string) int {
	for i, n := range m.kinds {
		if n == k {
			return i
		}
	}
	return -1
}

func targetMemKey(buf []byte, ttype, tid string) []byte {
	buf = append(buf, ttype...)
	buf = append(buf, 0)
	return append(buf, tid...)
}

// target returns the number of a target, numbering it if new.
func (t *memTables) target(kinds int, ttype, tid string) int32 {
	var buf [256]byte
	key := targetMemKey(buf[:0], ttype, tid)
	id, ok := t.targetIDs[string(key)]
	if !ok {
		id = int32(len(t.pos))
		t.targetIDs[string(key)] = id
		t.pos = append(t.pos, 0)
		t.cmaps = append(t.cmaps, atomic.Pointer[map[string]int64]{})
		t.n = append(t.n, make([]int64, kinds)...)
		t.rows++
	}
	return id
}

// user returns the number of a user, numbering it if new.
func (t *memTables) user(name string) int32 {
	id, ok := t.userIDs[name]
	if !ok {
		id = int32(len(t.userNames))
		t.userIDs[name] = id
		t.userNames = append(t.userNames, name)
		t.rows++
	}
	return id
}

func (t *memTables) setFlags(key memPair, flags uint64) {
	_, had := t.viewer[key]
	switch {
	case flags == 0 && had:
		delete(t.viewer, key)
		t.rows--
	case flags != 0:
		t.viewer[key] = flags
		if !had {
			t.rows++
		}
	}
}

// applied takes one committed batch: for each projection, the events after
// its checkpoint before the commit up to its checkpoint after. All of the
// batch's projections move under one hold of the lock, so a reader never
// finds the lanes at different positions between them (it would then go
// to SQLite).
func (m *memModel) applied(commits []commit, events []domain.Event) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range commits {
		if !m.appliedLocked(c, events) {
			return
		}
	}
}

// appliedLocked moves one lane; it reports false once the model no longer
// takes batches.
func (m *memModel) appliedLocked(c commit, events []domain.Event) bool {
	lane, ok := laneOf(c.name)
	if !ok {
		return true
	}
	if m.state != memValid {
		return false
	}
	if c.before != m.lane[lane] {
		m.staleLocked("projection %s committed from %d, the model had it at %d", c.name, c.before, m.lane[lane])
		return false
	}
	from := m.atLocked()
	m.lane[lane] = c.after
	to := m.atLocked()
	for _, e := range events {
		if e.Position > from && e.Position <= to {
			m.applyEvent(e)
		}
	}
	if m.rows > m.maxRows {
		m.offLocked(fmt.Sprintf("more than %d rows", m.maxRows))
		return false
	}
	return true
}

func (m *memModel) applyEvent(e domain.Event) {
	t := m.target(len(m.kinds), e.Target.Type(), e.Target.ID())
	m.pos[t] = max(m.pos[t], e.Position)
	k := m.kindIndex(e.Kind.String())
	if k < 0 {
		return
	}
	key := memPair{m.user(e.User.String()), t}
	flags := m.viewer[key]
	if e.On() {
		m.n[int(t)*len(m.kinds)+k]++
		flags |= 1 << k
	} else {
		m.n[int(t)*len(m.kinds)+k]--
		flags &^= 1 << k
	}
	m.cmaps[t].Store(nil)
	m.setFlags(key, flags)
	a := memActor{key.user, t, int32(k)}
	m.removeActor(a)
	if e.On() {
		m.addActor(a, e.Position, e.OccurredAt.UnixMilli())
	}
}

func (m *memModel) staleLocked(format string, args ...any) {
	m.log.Info("in-memory target reads paused until a reload: " + fmt.Sprintf(format, args...))
	m.state = memStale
	m.memTables = memTables{}
}

func (m *memModel) offLocked(reason string) {
	m.log.Info("target reads go to SQLite: the in-memory model is off", "reason", reason)
	m.state = memOff
	m.memTables = memTables{}
}

// invalidate makes the model stale: something changed the tables without
// going through applied.
func (m *memModel) invalidate(why string) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == memValid {
		m.staleLocked("%s", why)
	}
}

// retry reloads a stale model, at most once a second: a reload reads both
// tables, and the checkpoints it needs equal may be apart for a while.
func (m *memModel) retry(ctx context.Context, db *sql.DB) {
	m.mu.RLock()
	stale := m.state == memStale
	m.mu.RUnlock()
	if !stale {
		return
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if time.Since(m.lastLoad) >= m.reloadEvery {
		m.loadLocked(ctx, db)
	}
}

// load reads the counts, viewer and actors tables from one snapshot of db
// in which their checkpoints are equal, and makes the model valid at it. A
// snapshot whose checkpoints differ leaves the model stale (a later retry
// loads it); a failure or too many rows turns it off.
func (m *memModel) load(ctx context.Context, db *sql.DB) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.loadLocked(ctx, db)
}

// replaced reloads a model that has been loaded, after the tables were
// replaced (a rebuild's swap). A model never loaded is left to Open.
func (m *memModel) replaced(ctx context.Context, db *sql.DB) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.RLock()
	loaded := m.state == memValid || m.state == memStale
	m.mu.RUnlock()
	if loaded {
		m.loadLocked(ctx, db)
	}
}

func (m *memModel) loadLocked(ctx context.Context, db *sql.DB) {
	m.lastLoad = time.Now()
	m.mu.RLock()
	off := m.state == memOff
	m.mu.RUnlock()
	if off {
		return
	}
	fresh := &memModel{kinds: m.kinds, maxRows: m.maxRows, memTables: newMemTables()}
	at, ok, err := fresh.read(ctx, db)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil && ctx.Err() != nil:
		m.state = memStale
	case err != nil:
		m.offLocked(err.Error())
	case !ok:
		m.state = memStale
		m.memTables = memTables{}
	default:
		m.state = memValid
		for i := range m.lane {
			m.lane[i] = at
		}
		m.memTables = fresh.memTables
	}
}

// errTooBig stops a load that would exceed maxRows.
var errTooBig = fmt.Errorf("too many rows for the in-memory model")

// read fills m from one read transaction of db; ok is false when the
// checkpoints of counts, viewer and actors differ in it.
func (m *memModel) read(ctx context.Context, db *sql.DB) (at int64, ok bool, err error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	var cps [lanes]int64
	for i, name := range laneNames {
		cp, _, ok, err := checkpoint(ctx, tx, name)
		if err != nil || !ok {
			return 0, false, err
		}
		cps[i] = cp
	}
	if slices.Min(cps[:]) != slices.Max(cps[:]) {
		return 0, false, nil
	}
	if err := m.readCounts(ctx, tx); err != nil {
		return 0, false, fmt.Errorf("load counts: %w", err)
	}
	if err := m.readViewer(ctx, tx); err != nil {
		return 0, false, fmt.Errorf("load viewer: %w", err)
	}
	if err := m.readActors(ctx, tx); err != nil {
		return 0, false, fmt.Errorf("load actors: %w", err)
	}
	return cps[0], true, nil
}

func (m *memModel) readCounts(ctx context.Context, tx querier) error {
	rows, err := tx.QueryContext(ctx, `SELECT target_type, target_id, kind, n, position FROM counts`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var ttype, tid, kind string
	var n, pos int64
	for rows.Next() {
		if err := rows.Scan(&ttype, &tid, &kind, &n, &pos); err != nil {
			return err
		}
		t := m.target(len(m.kinds), ttype, tid)
		if m.rows > m.maxRows {
			return errTooBig
		}
		m.pos[t] = max(m.pos[t], pos)
		if k := m.kindIndex(kind); k >= 0 {
			m.n[int(t)*len(m.kinds)+k] = n
			m.cmaps[t].Store(nil)
		}
	}
	return rows.Err()
}

func (m *memModel) readViewer(ctx context.Context, tx querier) error {
	rows, err := tx.QueryContext(ctx, `SELECT user, target_type, target_id, kind FROM viewer`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var user, ttype, tid, kind string
	for rows.Next() {
		if err := rows.Scan(&user, &ttype, &tid, &kind); err != nil {
			return err
		}
		k := m.kindIndex(kind)
		if k < 0 {
			continue
		}
		key := memPair{m.user(user), m.target(len(m.kinds), ttype, tid)}
		m.setFlags(key, m.viewer[key]|1<<k)
		if m.rows > m.maxRows {
			return errTooBig
		}
	}
	return rows.Err()
}

// targets answers a Targets call from memory; ok is false when the model
// cannot answer (the caller then reads SQLite).
func (m *memModel) targets(ts []domain.Target, viewer *domain.UserID) (out []TargetView, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.answersLocked() {
		return nil, false
	}
	uid, known := int32(0), false
	if viewer != nil {
		uid, known = m.userIDs[viewer.String()]
	}
	var buf [256]byte
	out = make([]TargetView, len(ts))
	for i, t := range ts {
		v := TargetView{Target: t, Counts: m.zeroCounts}
		tid, ok := m.targetIDs[string(targetMemKey(buf[:0], t.Type(), t.ID()))]
		if ok {
			v.Counts, v.Position = m.countsOf(tid), m.pos[tid]
		}
		if viewer != nil {
			var flags uint64
			if ok && known {
				flags = m.viewer[memPair{uid, tid}]
			}
			v.Viewer = m.flagsOf(flags)
		}
		out[i] = v
	}
	return out, true
}

func (m *memModel) flagsOf(flags uint64) map[string]bool {
	if m.flagMaps != nil {
		return m.flagMaps[flags]
	}
	return m.buildFlags(flags)
}

// answersLocked reports whether the model answers reads: it is valid and
// all three projections have committed up to its position, so it holds
// what the views file holds. While one projection is ahead (they commit one
// by one, or a handler feeds only some), SQLite answers, which is fresher.
func (m *memModel) answersLocked() bool {
	return m.state == memValid && slices.Min(m.lane[:]) == slices.Max(m.lane[:])
}

// position returns the position readers of the model see, and whether
// the model answers reads.
func (m *memModel) position() (int64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.atLocked(), m.answersLocked()
}

// atLocked is the position of the snapshot readers see: the lowest of the
// checkpoints the model has taken (all only grow).
func (m *memModel) atLocked() int64 {
	return slices.Min(m.lane[:])
}
