package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// Apply applies events (in position order) to projection name in one
// transaction that also moves its checkpoint. Events at or below the
// checkpoint, read inside that transaction, are skipped, so replays and
// duplicates are harmless and a rebuild in another process never gets an
// event applied twice.
//
// When applying fails for a reason other than ctx ending, the projection is
// marked failed: the error is logged, OnStatus is told, Err reports it and
// nothing of the batch is kept, so the failing event is never skipped. A
// later successful Apply of that projection clears the mark. The returned
// error wraps ErrFailed and the cause (for example ErrNegativeCount), or is
// the context's error on shutdown (a context that ends once the batch's
// transaction has begun does not interrupt it: the batch commits or fails
// on its own); a *domain.ValidationError, without marking the projection
// failed, when positions do not strictly increase.
func (s *Set) Apply(ctx context.Context, name string, events []domain.Event) error {
	return s.ApplyAll(ctx, []string{name}, events)
}

// folds hands out the fold of events from an index on, folding each start
// once: the projections of one transaction are nearly always at the same
// checkpoint, and they only read a fold, so they share it.
type folds struct {
	events []domain.Event
	start  int
	b      *batch
}

func (f *folds) from(i int) *batch {
	if f.b == nil || f.start != i {
		f.b, f.start = newBatch(f.events[i:]), i
	}
	return f.b
}

// commit is what one projection's part of a committed batch moved: its
// checkpoint before and after.
type commit struct {
	name          string
	before, after int64
}

// applyIn applies the events after p's checkpoint in tx and returns the
// checkpoint before and after; saved is every checkpoint, read in tx.
func applyIn(ctx context.Context, tx querier, p projection, saved map[string]savedCheckpoint, f *folds, announce *[]AppliedEvent) (commit, error) {
	c := commit{name: p.name()}
	st, ok := saved[c.name]
	if !ok || st.version != p.version() {
		return c, fmt.Errorf("tables at schema version %d, want %d (rebuild needed)", st.version, p.version())
	}
	cp := st.pos
	c.before, c.after = cp, cp
	if err := checkEvent(f.events, st.event); err != nil {
		return c, err
	}
	i, _ := slices.BinarySearchFunc(f.events, cp, func(e domain.Event, pos int64) int { return cmp.Compare(e.Position, pos+1) })
	if i == len(f.events) {
		return c, nil
	}
	b := f.from(i)
	if err := p.apply(ctx, tx, "", b, announce); err != nil {
		return c, err
	}
	if err := setCheckpoint(ctx, tx, c.name, p.version(), markOf(f.events[len(f.events)-1])); err != nil {
		return c, err
	}
	c.after = b.last
	return c, nil
}

// ApplyAll is Apply for every projection of names (nil: all of the set)
// in one transaction: one commit instead of one per projection, and every
// projection's tables show the same position to readers. When one
// projection fails, nothing of the batch is kept and that projection is
// marked failed, as Apply does. Errors: as Apply's.
func (s *Set) ApplyAll(ctx context.Context, names []string, events []domain.Event) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.broken(); err != nil {
		// A failure a restart cures, reported by Err (readiness) while the
		// batch waits, as a full disk is, rather than an error that stops
		// the pipeline and the server.
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	projs, err := s.pick(names)
	if err != nil || len(events) == 0 {
		return err
	}
	if err := checkOrder(events); err != nil {
		return err
	}
	var announce *[]AppliedEvent
	if s.listening() && slices.ContainsFunc(projs, func(p projection) bool { return p.name() == Counts }) {
		announce = new([]AppliedEvent)
	}
	commits, failed, err := s.applyAllTx(ctx, projs, events, announce)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("apply %s: %w", failed, ctx.Err())
		}
		if errors.Is(err, ErrDiverged) {
			s.stopMoved(ctx, err)
			return fmt.Errorf("%w: %w", ErrFailed, err)
		}
		return s.fail(ctx, failed, err)
	}
	s.mem.applied(commits, events)
	s.mem.retry(ctx, s.v.read)
	for _, c := range commits {
		s.advance(c.name, c.after)
		s.recover(c.name)
	}
	if announce != nil {
		s.announce(*announce)
	}
	return nil
}

// applyAllTx applies events to projs in one transaction and returns what
// each projection's checkpoint moved; on failure it names the projection
// that failed.
func (s *Set) applyAllTx(ctx context.Context, projs []projection, events []domain.Event, announce *[]AppliedEvent) (commits []commit, failed string, err error) {
	failed = projs[0].name() // marked failed when the transaction itself fails
	if err := ctx.Err(); err != nil {
		return nil, failed, err
	}
	// Once begun, the batch runs to its commit or failure: under a context
	// that can end, database/sql and the driver watch every statement with
	// a goroutine of its own, a hand-off through the scheduler on the path
	// of every write waiting for its read model (a profile at an offered
	// 10,000 req/s found all the applier's statements on such goroutines),
	// and a live batch is a few events.
	ctx = context.WithoutCancel(ctx)
	err = inTx(ctx, s.v.write, func(tx querier) error {
		saved, err := checkpoints(ctx, tx, s.v.marked)
		if err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		commits = make([]commit, len(projs))
		f := &folds{events: events}
		for i, p := range projs {
			var a *[]AppliedEvent
			if p.name() == Counts && announce != nil {
				a = announce
				if err := s.announcePassed(ctx, tx, events, saved[Counts].pos, announce); err != nil {
					return err
				}
			}
			if commits[i], err = applyIn(ctx, tx, p, saved, f, a); err != nil {
				failed = p.name()
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, failed, err
	}
	return commits, "", nil
}

// checkEvent fails with ErrDiverged when events hold another event at the
// position of last, the last event a projection applied: the log was
// restored from an older copy under this process (it keeps its identity)
// and has grown again past that position, and the batch's later events
// would be added onto counts the log no longer has. The bus's tail hands
// over the event at the position it reads after with every batch, so the
// check needs no read of its own. A batch that does not reach back to last
// is not checked (WatchHead and the next Open are).
func checkEvent(events []domain.Event, last eventMark) error {
	if last.pos == 0 {
		return nil
	}
	i, found := slices.BinarySearchFunc(events, last.pos, func(e domain.Event, pos int64) int { return cmp.Compare(e.Position, pos) })
	if !found || events[i].ID == last.id {
		return nil
	}
	return movedUnder(&divergence{mark: last, at: events[i]})
}

// movedUnder is the error of a running set whose last applied event is not
// the log's event at its position (checkEvent, checkHead).
func movedUnder(d *divergence) error {
	return fmt.Errorf("%w: the views file %s: the log was restored from an older copy under this process and has "+
		"grown since; %s", ErrDiverged, d, movedRemedy)
}

// movedRemedy ends the error of a set stopped because the log moved under
// it (movedUnder, checkHead, Appending).
const movedRemedy = "restart it (its views file is then refused: ledger rebuild)"

func checkOrder(events []domain.Event) error {
	for i := 1; i < len(events); i++ {
		if events[i].Position <= events[i-1].Position {
			return &domain.ValidationError{Field: "events", Reason: fmt.Sprintf(
				"positions must increase: %d after %d", events[i].Position, events[i-1].Position)}
		}
	}
	return nil
}

// catchUpBatch is how many events CatchUp applies per transaction.
const catchUpBatch = 5000

// CatchUp applies what the log holds beyond the checkpoints straight from
// store, in large batches, up to the head it finds; Open does it when given
// a store, so that a server starts with its read model current rather than
// trickling the backlog through the bus. It returns the first Apply error
// (the projection is then marked failed) or the store's error.
func (s *Set) CatchUp(ctx context.Context, store domain.EventReader) error {
	if store == nil {
		return errNoStore
	}
	if err := s.usable(); err != nil {
		return err
	}
	after := s.Applied()
	buf := make([]domain.Event, 0, catchUpBatch+1)
	for {
		// From the event at after on, which each batch's check compares
		// with the one applied there (checkEvent).
		buf, err := domain.AppendEvents(buf[:0], store.ReadEvents(ctx, domain.EventFilter{After: max(after-1, 0), Limit: catchUpBatch + 1}))
		if err != nil {
			return fmt.Errorf("catch up after %d: %w", after, err)
		}
		if len(buf) == 0 || buf[len(buf)-1].Position <= after {
			return nil
		}
		if err := s.ApplyAll(ctx, nil, buf); err != nil {
			return err
		}
		after = buf[len(buf)-1].Position
	}
}

func (s *Set) fail(ctx context.Context, name string, cause error) error {
	if s.closed.Load() {
		// Closed under a batch in flight: the batch failed because the
		// file is gone, which says nothing about the projection.
		return fmt.Errorf("apply %s: %w (%v)", name, domain.ErrClosed, cause)
	}
	err := fmt.Errorf("%w: %s: %w", ErrFailed, name, cause)
	s.mu.Lock()
	prev := s.failed[name]
	s.failed[name] = err
	st := s.statusLocked(name)
	close(s.changed) // wake WaitFor callers so they see the failure
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if prev != nil && prev.Error() == err.Error() {
		// The same failure again, as a retry meets it: no news.
		s.log.DebugContext(ctx, "projection failed again", "projection", name, "err", cause)
		return err
	}
	s.log.ErrorContext(ctx, "projection failed to apply a batch; nothing of it was kept, and it goes on from its checkpoint once the cause is fixed",
		"projection", name, "applied", st.Applied, "err", cause)
	if s.cfg.OnStatus != nil {
		s.cfg.OnStatus(st)
	}
	return err
}

func (s *Set) recover(name string) {
	s.mu.Lock()
	_, was := s.failed[name]
	delete(s.failed, name)
	st := s.statusLocked(name)
	s.mu.Unlock()
	if !was {
		return
	}
	s.log.Info("projection applies again", "projection", name, "applied", st.Applied)
	if s.cfg.OnStatus != nil {
		s.cfg.OnStatus(st)
	}
}

// advance records that name has applied pos and wakes WaitFor callers.
func (s *Set) advance(name string, pos int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos <= s.applied[name] {
		return
	}
	s.applied[name] = pos
	close(s.changed)
	s.changed = make(chan struct{})
}

// Applied returns the position that every projection of the set has
// applied (the minimum), as known to this process.
func (s *Set) Applied() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appliedLocked()
}

func (s *Set) appliedLocked() int64 {
	low := int64(-1)
	for _, p := range s.projs {
		if a := s.applied[p.name()]; low < 0 || a < low {
			low = a
		}
	}
	return max(low, 0)
}

// WaitFor returns nil as soon as every projection has applied pos. It
// returns the context's error when ctx ends first, and an error wrapping
// ErrFailed at once when a projection has failed (it would never get
// there). Waiting costs no polling: callers sleep on a channel that is
// closed whenever a projection advances.
func (s *Set) WaitFor(ctx context.Context, pos int64) error {
	for {
		s.mu.Lock()
		applied, ch, err := s.appliedLocked(), s.changed, s.errLocked()
		s.mu.Unlock()
		if applied >= pos {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.usable(); err != nil {
			return err // closed: nothing will be applied any more
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for position %d (applied %d): %w", pos, applied, ctx.Err())
		}
	}
}

// Err returns nil while every projection is healthy, and an error wrapping
// ErrFailed and the cause when one has failed and stopped (readiness).
func (s *Set) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errLocked()
}

func (s *Set) errLocked() error {
	if err := s.broken(); err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	for _, p := range s.projs {
		if err := s.failed[p.name()]; err != nil {
			return err
		}
	}
	return nil
}

// Status returns every projection's state, in the set's order.
func (s *Set) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.projs))
	for _, p := range s.projs {
		out = append(out, s.statusLocked(p.name()))
	}
	return out
}

func (s *Set) statusLocked(name string) Status {
	p, _ := projectionByName(name)
	return Status{Projection: name, Version: p.version(), Applied: s.applied[name], Err: s.failed[name]}
}

// OnApplied registers fn to receive every event the counts projection
// applies, with its target's counts right after it, in position order,
// after the batch commits. fn runs on the applying goroutine and must not
// block (hand the value to a buffered channel and drop or disconnect slow
// consumers). It returns a function that unregisters fn. The set must
// include the counts projection for fn to be called.
func (s *Set) OnApplied(fn func(AppliedEvent)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	s.nextID++
	s.listeners[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.listeners, id)
	}
}

func (s *Set) listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners) > 0
}

// announcePassed adds to announce the events of a batch that the counts
// checkpoint cp had already passed and that were never announced: a
// rebuild in another process (ledger rebuild beside a running server)
// applied them and moved the checkpoint, so applyIn skips them, and the
// event stream would lose them. Each carries its target's counts as the
// table holds them now, at or after the event, as the stream's replayed
// events do.
func (s *Set) announcePassed(ctx context.Context, tx querier, events []domain.Event, cp int64, announce *[]AppliedEvent) error {
	s.announceMu.Lock()
	last := s.announced
	s.announceMu.Unlock()
	lo, _ := slices.BinarySearchFunc(events, last, func(e domain.Event, pos int64) int { return cmp.Compare(e.Position, pos+1) })
	hi, _ := slices.BinarySearchFunc(events, cp, func(e domain.Event, pos int64) int { return cmp.Compare(e.Position, pos+1) })
	if lo >= hi {
		return nil
	}
	return announceStored(ctx, tx, events[lo:hi], announce)
}

// announce hands events to the listeners, each once, in position order,
// even when a rebuild's swap and the live applier both announce.
func (s *Set) announce(events []AppliedEvent) {
	s.announceMu.Lock()
	defer s.announceMu.Unlock()
	s.mu.Lock()
	fns := make([]func(AppliedEvent), 0, len(s.listeners))
	for _, fn := range s.listeners {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, ae := range events {
		if ae.Event.Position <= s.announced {
			continue
		}
		s.announced = ae.Event.Position
		ae.Counts = s.cfg.Kinds.Counts(ae.Counts)
		for _, fn := range fns {
			fn(ae)
		}
	}
}

// ErrLogBehind marks a log whose head went back behind what the set
// applied: WatchHead saw the head there, or Appending an append of this
// process at a position the set applied.
var ErrLogBehind = errors.New("the log's head is behind what the views file applied")

// headReadTimeout bounds WatchHead's read of the log's head, so that a
// database that stops answering does not hold it.
const headReadTimeout = 5 * time.Second

// WatchHead reads store's head every interval until ctx ends, and stops
// the set for good when the log moved under it: its head is behind a
// position the set applied, or the log's event at the position of the
// last event the set applied is another (the id differs). The log was
// restored from an older copy under this process (it keeps its identity):
// its next appends take positions the set has applied, with other events,
// which the set would skip, then apply the later ones onto counts the log
// no longer has. A restored log that grows back to the set's position (or
// past it) before a look is seen by the event's id: until then the set
// answered the old log's counts as current, for as long as no event came
// past it. From then on it applies and answers nothing, and Err names the
// cause, until a restart, whose Open refuses the views file and names
// ledger rebuild.
func (s *Set) WatchHead(ctx context.Context, store domain.EventReader, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for s.moved.Load() == nil {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.checkHead(ctx, store)
	}
}

// checkHead is one look of WatchHead. The applied position is read before
// the head: this log's head is never below it. Then the last event each
// projection applied (its checkpoint's mark, in the views file) must be
// the log's event at its position: one read of the checkpoints and one of
// an event per position they name (one while the projections are at the
// same checkpoint).
func (s *Set) checkHead(ctx context.Context, store domain.EventReader) {
	applied := s.highestApplied()
	rctx, cancel := context.WithTimeout(ctx, headReadTimeout)
	defer cancel()
	head, err := store.LastPosition(rctx)
	if err != nil {
		return
	}
	if head < applied {
		s.stopMoved(ctx, fmt.Errorf("%w: the log's head %d is behind position %d, which this process applied: the log was "+
			"restored from an older copy under it; %s", ErrLogBehind, head, applied, movedRemedy))
		return
	}
	if s.broken() != nil {
		return // a views file replaced under the set: its checkpoints are not the set's
	}
	if d, _, err := s.divergedMark(rctx, store); err == nil && d != nil {
		s.stopMoved(ctx, movedUnder(d))
	}
}

// Appending is for a process that appends to the log the set follows (a
// server's writes): call it before an append, and the function it returns
// with the position of the first event the append wrote. In the log the
// set follows, that position is past every position the set had applied
// when the append began; one that is not means the log moved back under
// the process (an older copy restored, which keeps the log's identity) and
// the append took a position the set applied with another event. The set
// then stops for good, as WatchHead does, before the writer reads the
// counts after its write: the set's counts are the old log's, without the
// write, and were answered as the state after it until WatchHead's next
// look.
func (s *Set) Appending() (appended func(ctx context.Context, first int64)) {
	before := s.highestApplied()
	return func(ctx context.Context, first int64) {
		if first > before {
			return
		}
		s.stopMoved(ctx, fmt.Errorf("%w: this process appended an event at position %d, and it had applied position %d: "+
			"the log was restored from an older copy under it; %s", ErrLogBehind, first, before, movedRemedy))
	}
}

// stopMoved stops the set for good because the log moved under it (cause
// says how): from then on it applies and answers nothing, and Err names
// the cause, until a restart.
func (s *Set) stopMoved(ctx context.Context, cause error) {
	if !s.moved.CompareAndSwap(nil, &cause) {
		return
	}
	s.mu.Lock()
	close(s.changed) // wake WaitFor callers so they see the failure
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.log.ErrorContext(ctx, "the log moved under this process; it applies and answers nothing until restarted", "err", cause)
}

// highestApplied is the highest position a projection of the set applied.
func (s *Set) highestApplied() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var high int64
	for _, p := range s.projs {
		high = max(high, s.applied[p.name()])
	}
	return high
}
