package projections

import (
	"cmp"
	"slices"
	"strings"

	"github.com/interactionledger/ledger/domain"
)

// Folds: a run of events reduced to its net effect, which is what every
// projection applies. Batches intern their identifiers: users, targets and
// kinds become small integers, so folding hashes short keys and sorting
// compares integers (ranks in string order), which matters when a rebuild
// folds millions of events.

// ikey identifies one (user, target, kind) interaction by interned ids.
type ikey struct {
	user, target, kind int32
}

// change is the net effect of a batch on one interaction: its state after
// the batch, and whether a row for it existed before the batch. Because the
// log only holds real toggles, a key's first event in the batch tells the
// state before it: a cancellation means it was on.
type change struct {
	key     ikey
	on      bool
	existed bool
	since   int64 // unix milliseconds of the turn-on, when on
	pos     int64 // position of the turn-on, when on
}

// ckey identifies one (target, kind) count by interned ids.
type ckey struct {
	target, kind int32
}

// delta is the net effect of a batch on one count.
type delta struct {
	key ckey
	n   int64
	min int64 // lowest running sum within the batch (<= 0)
	pos int64 // last event of the batch for this key
}

// batch is a run of events folded into their net effect: per interaction
// its final state, per count its delta. Live batches keep their events
// (the counts projection replays them to announce each one); rebuild
// batches fold millions of events and keep only the net effect.
type batch struct {
	events  []domain.Event
	users   interner[string]
	targets interner[targetKey]
	kinds   interner[string]
	changes []change
	ci      map[ikey]int32
	deltas  []delta
	di      map[ckey]int32
	last    int64 // position of the last event added
	n       int   // events added
	// fresh says the tables are known to be empty (the first flush of a
	// build), so nothing needs to be read or deleted.
	fresh bool
	// ranks of the interned ids in string order, computed for sorting.
	userRank, targetRank, kindRank []int32
	// the interned values as interface values, made once for the inserts
	// (boxing them per row was one allocation per value).
	boxes *boxed
	// buffers of sortedChanges, reused from one table to the next.
	order  []sortEntry
	sorted []*change
}

// targetKey is a target inside the projections: type and id.
type targetKey struct{ ttype, tid string }

func compareTargets(a, b targetKey) int {
	if c := strings.Compare(a.ttype, b.ttype); c != 0 {
		return c
	}
	return strings.Compare(a.tid, b.tid)
}

// interner maps values to dense ids.
type interner[T comparable] struct {
	ids  map[T]int32
	vals []T
}

func (in *interner[T]) id(v T) int32 {
	if id, ok := in.ids[v]; ok {
		return id
	}
	if in.ids == nil {
		in.ids = make(map[T]int32)
	}
	id := int32(len(in.vals))
	in.ids[v] = id
	in.vals = append(in.vals, v)
	return id
}

// ranks returns, for each id, its rank in the order of cmpFn.
func (in *interner[T]) ranks(cmpFn func(a, b T) int) []int32 {
	order := make([]int32, len(in.vals))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmpFn(in.vals[a], in.vals[b]) })
	rank := make([]int32, len(order))
	for r, id := range order {
		rank[id] = int32(r)
	}
	return rank
}

// newBatch folds events and keeps them.
func newBatch(events []domain.Event) *batch {
	b := newFold()
	for _, e := range events {
		b.add(e.Toggle())
	}
	b.events = events
	return b
}

func newFold() *batch { return newFoldCap(0) }

// newFoldCap returns an empty fold with room for keys changes.
func newFoldCap(keys int) *batch {
	return &batch{ci: make(map[ikey]int32), di: make(map[ckey]int32), changes: make([]change, 0, keys)}
}

// add folds one event, as its toggle, into the batch.
func (b *batch) add(t domain.Toggle) {
	b.n++
	b.last = t.Position
	k := ikey{
		user:   b.users.id(t.Stream.User.String()),
		target: b.targets.id(targetKey{t.Stream.Target.Type(), t.Stream.Target.ID()}),
		kind:   b.kinds.id(t.Kind.String()),
	}
	i, seen := b.ci[k]
	if !seen {
		i = int32(len(b.changes))
		b.ci[k] = i
		b.changes = append(b.changes, change{key: k, existed: !t.On})
	}
	c := &b.changes[i]
	c.on = t.On
	if c.on {
		c.since, c.pos = t.OccurredAt.UnixMilli(), t.Position
	}
	dp := b.delta(ckey{k.target, k.kind})
	if t.On {
		dp.n++
	} else {
		dp.n--
	}
	dp.min = min(dp.min, dp.n)
	dp.pos = t.Position
}

// delta returns the batch's delta of count d, adding it if new.
func (b *batch) delta(d ckey) *delta {
	j, seen := b.di[d]
	if !seen {
		j = int32(len(b.deltas))
		b.di[d] = j
		b.deltas = append(b.deltas, delta{key: d})
	}
	return &b.deltas[j]
}

// addLatest folds the last toggle of one interaction (a
// domain.LatestReader's): into fresh tables, an interaction that ends on
// is one row and one count, and one that ends off is no row, only the
// position of its count. Each interaction comes once, so changes need no
// lookup map, and counts keep the highest position, as latest toggles come
// in no position order.
func (b *batch) addLatest(t domain.Toggle) {
	b.n++
	b.last = max(b.last, t.Position)
	target := b.targets.id(targetKey{t.Stream.Target.Type(), t.Stream.Target.ID()})
	kind := b.kinds.id(t.Kind.String())
	if t.On {
		k := ikey{user: b.users.id(t.Stream.User.String()), target: target, kind: kind}
		b.changes = append(b.changes, change{key: k, on: true, since: t.OccurredAt.UnixMilli(), pos: t.Position})
	}
	dp := b.delta(ckey{target, kind})
	if t.On {
		dp.n++
	}
	dp.pos = max(dp.pos, t.Position)
}

func (b *batch) user(k ikey) string { return b.users.vals[k.user] }

func (b *batch) target(id int32) targetKey { return b.targets.vals[id] }

func (b *batch) kind(id int32) string { return b.kinds.vals[id] }

// rank computes the ranks once.
func (b *batch) rank() {
	if b.userRank != nil || len(b.changes) == 0 {
		return
	}
	b.userRank = b.users.ranks(strings.Compare)
	b.targetRank = b.targets.ranks(compareTargets)
	b.kindRank = b.kinds.ranks(strings.Compare)
}

// boxed holds a batch's interned values as the interface values that
// database/sql takes, indexed by interned id.
type boxed struct {
	users, ttypes, tids, kinds []any
}

// boxed returns the batch's values boxed, made on the first call.
func (b *batch) boxed() *boxed {
	if b.boxes != nil {
		return b.boxes
	}
	v := &boxed{users: boxAll(b.users.vals), kinds: boxAll(b.kinds.vals)}
	for _, t := range b.targets.vals {
		v.ttypes = append(v.ttypes, t.ttype)
		v.tids = append(v.tids, t.tid)
	}
	b.boxes = v
	return v
}

func boxAll(vals []string) []any {
	out := make([]any, len(vals))
	for i, s := range vals {
		out[i] = s
	}
	return out
}

// sortKey is a change's place in a table's primary-key order, packed
// into two integers so that sorting compares plain values in one slice
// instead of chasing pointers: ranks (in string order) of the key's
// strings, then a rank or a position.
type sortKey struct{ hi, lo uint64 }

// pack puts two ranks into one integer, the first more significant.
func pack(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// sortEntry is one change's place in a table's order.
type sortEntry struct {
	k sortKey
	i int32
}

// sortedChanges returns the changes in the order key gives, as pointers
// into the batch (each table wants its own primary-key order so that
// inserts land next to each other). The result is only valid until the
// next call: the tables of a batch are written one after the other, so
// they share one pair of buffers (24 and 8 bytes a change, 32 MB for a
// 1M-key fold, which three tables used to allocate each).
func (b *batch) sortedChanges(key func(b *batch, c *change) sortKey) []*change {
	b.rank()
	es := slices.Grow(b.order[:0], len(b.changes))[:len(b.changes)]
	for i := range b.changes {
		es[i] = sortEntry{key(b, &b.changes[i]), int32(i)}
	}
	slices.SortFunc(es, func(x, y sortEntry) int {
		if x.k.hi != y.k.hi {
			return cmp.Compare(x.k.hi, y.k.hi)
		}
		return cmp.Compare(x.k.lo, y.k.lo)
	})
	out := slices.Grow(b.sorted[:0], len(es))[:len(es)]
	for j, e := range es {
		out[j] = &b.changes[e.i]
	}
	b.order, b.sorted = es, out
	return out
}

// seal drops what only folding needs, the lookup maps, so that a fold
// being written holds little more than its changes: measured on a fold of
// 1M keys, 69 MB before and 31 MB after.
func (b *batch) seal() {
	b.ci, b.di = nil, nil
	b.users.ids, b.targets.ids, b.kinds.ids = nil, nil, nil
}
