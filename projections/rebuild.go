package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/interactionledger/ledger/domain"
)

// newSuffix names the tables a rebuild fills before the swap.
const newSuffix = "__new"

// Rebuild recomputes the named projections (nil: all of the set) from
// store into fresh tables, then swaps them in. Queries keep answering from
// the old tables until the swap.
//
// The log is read in one streaming pass and folded in memory (bounded by
// Config.FoldKeys), each full fold written while the next fills; when the
// store is a domain.LatestReader that pass reads only the last event of
// each (stream, kind), since the tables start empty. Then comes one
// catch-up pass without the write lock, then the swap: one transaction that applies what the log gained meanwhile, drops
// the old tables, renames the new ones and moves the checkpoints. A live
// applier in this or another process waits for the swap on the file's
// write lock and then skips what the swap already applied. Two rebuilds of
// the same views file share the "__new" tables, so one waits for the
// other's end (LockRebuild) and then rebuilds afresh.
//
// progress, when not nil, is called from the rebuilding goroutine. Errors:
// *domain.ValidationError for an unknown name, the store's or SQLite's
// error, ErrNegativeCount if the log is inconsistent, or ctx's error.
func (s *Set) Rebuild(ctx context.Context, store domain.EventReader, names []string, progress func(Progress)) error {
	if store == nil {
		return errNoStore
	}
	projs, err := s.pick(names)
	if err != nil {
		return err
	}
	unlock, err := lockRebuild(ctx, s.cfg.Path, s.log, func() {
		if progress != nil {
			progress(Progress{Projection: label(projs), Phase: "wait"})
		}
	})
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer unlock()
	total, err := store.LastPosition(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := createTables(ctx, s.v.write, projs, newSuffix); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := s.build(ctx, store, projs, total, progress); err != nil {
		// Best effort: a later rebuild drops leftovers anyway.
		if derr := dropTables(context.WithoutCancel(ctx), s.v.write, projs, newSuffix); derr != nil {
			s.log.WarnContext(ctx, "rebuild: dropping the unfinished tables failed", "err", derr)
		}
		return err
	}
	return nil
}

// A backlog is rebuilt rather than caught up (Config.RebuildBehind) when it
// holds at least rebuildBacklogMin events and at least 1/rebuildBacklogShare
// of the log. Catching up applies a backlog at ~60,000 events/s (batches of
// catchUpBatch through the live applier's statements); a rebuild from a
// domain.LatestReader reads the whole log at ~440,000–530,000 events/s
// (1M and 10M events), so it wins from a backlog of about an eighth of the
// log; a fifth leaves room for its fixed costs (index sorts, the swap). On
// PostgreSQL the two run at ~35,000 and ~200,000 events/s: a fifth holds.
// Below the minimum a catch-up takes a few seconds anyway.
var (
	rebuildBacklogMin   int64 = 200_000
	rebuildBacklogShare int64 = 5
)

// errNoStore is the error of Rebuild and CatchUp called without a store.
var errNoStore = fmt.Errorf("projections: no store to read the log from: %w", domain.ErrInvalidInput)

// ErrAhead is Open's error for a views file ahead of its log (refuseAhead).
var ErrAhead = errors.New("the views file is ahead of the log")

// ErrDiverged is Open's error for a views file whose last applied event is
// not the log's event at that position (refuseDiverged).
var ErrDiverged = errors.New("the views file holds events the log does not")

// ErrServed is LockServe's error for a views file another server serves.
var ErrServed = errors.New("the views file is served by another process")

// ErrOtherLog is Open's error for a views file built from another log
// (refuseOtherLog).
var ErrOtherLog = errors.New("the views file was built from another log")

// refuseOtherLog fails Open when a projection's tables were built from
// another log than the store's (domain.Identified): the views file of a
// log that was deleted and created anew, or of another log file, which
// refuseAhead catches only while that log is the longer. Its checkpoints
// would apply this log's events onto another log's counts. Like
// refuseAhead, only a server (RebuildBehind) checks: `ledger rebuild`
// records the log it rebuilds from. It reads only: recordLog takes a
// file with no log recorded as this log's once every refusal has passed.
func (s *Set) refuseOtherLog(ctx context.Context, logID string, head int64) error {
	if logID == "" {
		return nil
	}
	for _, p := range s.projs {
		from, err := builtFrom(ctx, s.v.read, "main", p.name())
		if err != nil {
			return fmt.Errorf("open views: %w", err)
		}
		if from != "" && from != logID {
			return fmt.Errorf("open views: %s was built from the log %s, and this log is %s: %w; %s",
				p.name(), from, logID, ErrOtherLog, otherLogRemedy(head))
		}
	}
	return nil
}

// otherLogRemedy is refuseOtherLog's advice. Over an empty log it first
// names the likely cause: a SQLite log copied without its -wal while a
// server ran holds no event, and the first server to open the copy made it
// a new log. Rebuilding the views from it would serve an empty site.
func otherLogRemedy(head int64) string {
	const rebuild = "rebuild it from this log (ledger rebuild)"
	if head > 0 {
		return rebuild
	}
	return "this log holds no event: if it is a copy of that log's SQLite file, it was copied without its -wal " +
		"while a server ran (copy the -wal too, or stop the server first); else " + rebuild
}

// recordLog records logID as the log of the projections whose tables
// record none (a file older than log identities): from then on, another
// log's is refused. Called once Open has refused nothing, so a mistaken
// --db does not claim a file for the wrong log.
func (s *Set) recordLog(ctx context.Context, logID string) error {
	if logID == "" {
		return nil
	}
	return inTx(ctx, s.v.write, func(tx querier) error {
		for _, p := range s.projs {
			from, err := builtFrom(ctx, tx, "main", p.name())
			if err == nil && from == "" {
				err = setBuiltFrom(ctx, tx, p.name(), logID)
			}
			if err != nil {
				return fmt.Errorf("open views: %w", err)
			}
		}
		return nil
	})
}

// refuseAhead fails Open when a projection has applied a position beyond
// the log's head (read once by Open for it and rebuildBehind): the views file belongs to another log, or the log was
// restored from an older copy. Serving it would answer another log's
// counts, and the log's next appends, at positions the views file has
// already passed, would never be applied. A views file is never rebuilt
// over here, since it may be another log's own: `ledger rebuild` (a Set
// without RebuildBehind) rebuilds it from this log.
func (s *Set) refuseAhead(head int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.projs {
		if applied := s.applied[p.name()]; applied > head {
			return fmt.Errorf("open views: %s has applied position %d, beyond the log's head %d: %w; "+
				"it belongs to another log, or the log was restored from an older copy: rebuild it from this "+
				"log (ledger rebuild)", p.name(), applied, head, ErrAhead)
		}
	}
	return nil
}

// refuseDiverged fails Open when a projection's last applied event (its
// checkpoint's event mark) is not the log's event at that position: the
// log was restored from an older copy (it keeps its identity) and has
// grown again past the views file, so refuseAhead no longer sees it.
// Caught up, the views file would add the log's new events onto counts
// the log never had. It reads the checkpoints and one event per position
// named. A file whose checkpoints name no event yet (written by an older
// ledger) is checked by its counts table instead (refuseDivergedCounts).
func (s *Set) refuseDiverged(ctx context.Context, store domain.EventReader) error {
	d, marked, err := s.divergedMark(ctx, store)
	if err != nil {
		return fmt.Errorf("open views: %w", err)
	}
	if d != nil {
		return fmt.Errorf("open views: %s %s: %w; %s", d.name, d, ErrDiverged, divergedRemedy)
	}
	if marked {
		return nil
	}
	return s.refuseDivergedCounts(ctx, store)
}

// divergence is a projection whose last applied event (its checkpoint's
// mark) is not the log's event at that position.
type divergence struct {
	name string
	mark eventMark
	at   domain.Event // the log's event at mark.pos (zero: none)
}

func (d *divergence) String() string {
	return fmt.Sprintf("applied event %s at position %d, and the log's event there is %s", d.mark.id, d.mark.pos, describeID(d.at))
}

// divergedMark returns the first projection of names (nil: the set's)
// whose mark the log does not hold at that position, nil when every mark
// is the log's; marked says whether any checkpoint names an event. It
// reads the checkpoints and one event per position named (refuseDiverged
// at Open, checkHead while serving, Diverged for verify and stats).
func (s *Set) divergedMark(ctx context.Context, store domain.EventReader, names ...string) (d *divergence, marked bool, err error) {
	saved, err := checkpoints(ctx, s.v.read, s.v.marked)
	if err != nil {
		return nil, false, fmt.Errorf("read checkpoints: %w", err)
	}
	if names == nil {
		names = s.Names()
	}
	found := map[int64]domain.Event{}
	for _, name := range names {
		mark := saved[name].event
		if mark.pos == 0 {
			continue
		}
		marked = true
		e, ok := found[mark.pos]
		if !ok {
			if e, err = domain.EventAt(ctx, store, mark.pos); err != nil {
				return nil, marked, err
			}
			found[mark.pos] = e
		}
		if e.Position != mark.pos || e.ID != mark.id {
			return &divergence{name, mark, e}, marked, nil
		}
	}
	return nil, marked, nil
}

// Diverged says how projection name's last applied event (its
// checkpoint's mark) differs from store's event at that position, or ""
// when it is the log's or the checkpoint names none (an older build's):
// the log was restored from an older copy and has grown past the views
// file, or it is another log. Open refuses such a file (ErrDiverged);
// verify and stats name it instead of comparing tables or showing a lag.
func (s *Set) Diverged(ctx context.Context, store domain.EventReader, name string) (string, error) {
	d, _, err := s.divergedMark(ctx, store, name)
	if err != nil || d == nil {
		return "", err
	}
	return d.String(), nil
}

// divergedRemedy is refuseDiverged's advice.
const divergedRemedy = "the log was restored from an older copy and has grown since, or it is another log: " +
	"rebuild it from this log (ledger rebuild)"

// refuseDivergedCounts is refuseDiverged for a views file whose
// checkpoints name no event: it compares the target and kind of the counts
// table's last applied row with the log's event at that position, which a
// restored log matches only by chance; it scans the counts table.
func (s *Set) refuseDivergedCounts(ctx context.Context, store domain.EventReader) error {
	if !slices.Contains(s.cfg.Projections, Counts) {
		return nil
	}
	var typ, id, kind string
	var pos int64
	err := s.v.read.QueryRowContext(ctx,
		`SELECT target_type, target_id, kind, position FROM counts ORDER BY position DESC LIMIT 1`).Scan(&typ, &id, &kind, &pos)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open views: last counts row: %w", err)
	}
	e, err := domain.EventAt(ctx, store, pos)
	if err != nil {
		return fmt.Errorf("open views: %w", err)
	}
	if e.Position == pos && e.Target.Type() == typ && e.Target.ID() == id && e.Kind.String() == kind {
		return nil
	}
	return fmt.Errorf("open views: counts applied %s/%s %s at position %d, and the log's event there is %s: %w; %s",
		typ, id, kind, pos, describe(e), ErrDiverged, divergedRemedy)
}

// describe names an event in refuseDiverged's errors.
func describe(e domain.Event) string {
	if e.Position == 0 {
		return "none"
	}
	return fmt.Sprintf("%s %s at position %d", e.Target, e.Kind, e.Position)
}

// describeID is describe with the event's id, for the errors that compare
// ids: the log's event there may have the applied event's target and kind.
func describeID(e domain.Event) string {
	if e.Position == 0 {
		return "none"
	}
	return fmt.Sprintf("event %s (%s)", e.ID, describe(e))
}

// rebuildBehind rebuilds the projections whose backlog behind store's head
// is worth a rebuild (see rebuildBacklogMin); only from a store that picks
// each interaction's last event itself (domain.LatestReader), without
// which a rebuild reads every event too. A rebuild that fails for another
// reason than ctx leaves the projections to CatchUp, which marks one that
// fails to apply, as Open promises.
func (s *Set) rebuildBehind(ctx context.Context, store domain.EventReader, head int64) error {
	if _, ok := store.(domain.LatestReader); !ok {
		return nil
	}
	var behind []string
	s.mu.Lock()
	for _, p := range s.projs {
		if backlog := head - s.applied[p.name()]; backlog >= rebuildBacklogMin && backlog*rebuildBacklogShare >= head {
			behind = append(behind, p.name())
		}
	}
	s.mu.Unlock()
	if len(behind) == 0 {
		return nil
	}
	s.log.InfoContext(ctx, "rebuilding projections far behind the log instead of catching them up",
		"projections", behind, "head", head)
	err := s.Rebuild(ctx, store, behind, s.cfg.OnProgress)
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "rebuilding far-behind projections failed; catching them up instead", "err", err)
		return nil
	}
	return err
}

// build fills the "__new" tables of projs and swaps them in.
func (s *Set) build(ctx context.Context, store domain.EventReader, projs []projection, total int64, progress func(Progress)) error {
	b := &builder{db: s.v.write, store: store, projs: projs, sfx: newSuffix,
		foldKeys: s.cfg.FoldKeys, fresh: true, label: label(projs), total: total, progress: progress}
	built, err := b.run(ctx, 0, head)
	if err != nil {
		return err
	}
	// Catch up without the lock first, so the swap has little left to do.
	if built, err = b.run(ctx, built, head); err != nil {
		return err
	}
	b.report("swap", 0)
	if err := s.swap(ctx, store, projs, built); err != nil {
		return fmt.Errorf("rebuild %s: swap: %w", b.label, err)
	}
	b.report("done", 0)
	return nil
}

func (s *Set) pick(names []string) ([]projection, error) {
	if names == nil {
		return slices.Clone(s.projs), nil
	}
	var out []projection
	for _, n := range names {
		p, err := s.projection(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// swap applies the events after built to the new tables, replaces the old
// tables with them and sets the checkpoints, in one transaction.
func (s *Set) swap(ctx context.Context, store domain.EventReader, projs []projection, built int64) error {
	var head int64
	var announce *[]AppliedEvent
	// The tail is read inside the transaction: once it holds the write
	// lock, no live batch can commit an event the tail would miss.
	err := inTx(ctx, s.v.write, func(tx querier) error {
		tail, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{After: built}))
		if err != nil {
			return err
		}
		last, err := swapMark(ctx, store, tail, built)
		if err != nil {
			return err
		}
		if len(tail) > 0 && s.listening() {
			announce = new([]AppliedEvent)
		}
		head = last.pos
		for _, p := range projs {
			if err := swapOne(ctx, tx, p, tail, last, announce); err != nil {
				return fmt.Errorf("%s: %w", p.name(), err)
			}
			if err := setBuiltFrom(ctx, tx, p.name(), domain.LogIDOf(store)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The tables were replaced: the memory model reads them again.
	s.mem.replaced(ctx, s.v.read)
	// A failed projection stays failed: only a successful Apply (the bus
	// handler's next try, or a restart's catch-up) proves it runs again.
	for _, p := range projs {
		s.advance(p.name(), head)
	}
	if announce != nil {
		s.announce(*announce)
	}
	return nil
}

// swapMark is the last event a swap applies: the tail's last, or the
// build's when the tail is empty.
func swapMark(ctx context.Context, store domain.EventReader, tail []domain.Event, built int64) (eventMark, error) {
	if len(tail) > 0 {
		return markOf(tail[len(tail)-1]), nil
	}
	return markAt(ctx, store, built)
}

func swapOne(ctx context.Context, tx querier, p projection, tail []domain.Event, last eventMark, announce *[]AppliedEvent) error {
	if len(tail) > 0 {
		var a *[]AppliedEvent
		if p.name() == Counts {
			a = announce
		}
		if err := p.apply(ctx, tx, newSuffix, newBatch(tail), a); err != nil {
			return err
		}
	}
	for _, t := range p.tables() {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+t+newSuffix+` RENAME TO `+t); err != nil {
			return err
		}
	}
	return setCheckpoint(ctx, tx, p.name(), p.version(), last)
}
