package legacy

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// Step is one command of a Plan with the line it came from.
type Step struct {
	Line    int
	Command domain.Command
	// After is how many of the plan's events its stream (user and target)
	// holds before this one: the version it is appended after.
	After int64
}

// Each calls f with every step of the plan, in order, until f fails.
func (p *Plan) Each(ctx context.Context, f func(Step) error) error {
	// Read without ctx, which the driver would watch from a goroutine of
	// its own for every row; the loop checks it instead.
	rows, err := p.s.conn.QueryContext(context.WithoutCancel(ctx),
		`SELECT p.line, p.cancel, p.at, p.after, r.id_text, r.user, r.target_type, r.target_id, r.kind
		FROM plan p JOIN row r ON r.line = p.line ORDER BY p.n`)
	if err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, err := p.scanStep(rows)
		if err != nil {
			return err
		}
		if err := f(s); err != nil {
			return err
		}
	}
	return rows.Err()
}

// scanStep makes the step of one row of the plan table, with its
// metadata (the source and the row id).
func (p *Plan) scanStep(rows *sql.Rows) (Step, error) {
	var s Step
	var cancel bool
	var at int64
	var idText, user, typ, id, kind string
	if err := rows.Scan(&s.Line, &cancel, &at, &s.After, &idText, &user, &typ, &id, &kind); err != nil {
		return s, fmt.Errorf("scratch database: %w", err)
	}
	u, err := domain.NewUserID(user)
	if err != nil {
		return s, err
	}
	t, err := domain.NewTarget(typ, id)
	if err != nil {
		return s, err
	}
	k, err := p.kinds.Parse(kind)
	if err != nil {
		return s, err
	}
	when, typeOf := time.Unix(at, 0).UTC(), domain.EventAdded
	if cancel {
		typeOf = domain.EventCancelled
	}
	s.Command = domain.Command{Stream: domain.StreamID{User: u, Target: t}, Kind: k, On: !cancel,
		OccurredAt: when, EventID: EventID(p.source, idText, typeOf, when),
		Metadata: domain.MustMetadata(map[string]string{"source": p.source, "legacy_id": idText})}
	return s, nil
}

// Errors calls f with every rejected row, by line, until f fails.
func (p *Plan) Errors(ctx context.Context, f func(RowError) error) error {
	return p.rowErrors(ctx, `SELECT line, col, reason FROM rejected ORDER BY line`, f)
}

// Conflicts calls f with every row the last Apply did not import because
// of a conflict (Result.Conflicts), in the plan's order, until f fails.
func (p *Plan) Conflicts(ctx context.Context, f func(RowError) error) error {
	return p.rowErrors(ctx, `SELECT line, 'user_id', reason FROM conflict ORDER BY n`, f)
}

func (p *Plan) rowErrors(ctx context.Context, query string, f func(RowError) error) error {
	rows, err := p.s.conn.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e RowError
		if err := rows.Scan(&e.Line, &e.Column, &e.Reason); err != nil {
			return fmt.Errorf("scratch database: %w", err)
		}
		if err := f(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Importer is the part of domain.Ledger that Apply needs.
type Importer interface {
	Import(ctx context.Context, cmd domain.Command, after int64) (domain.ImportResult, error)
}

// QueueImporter is an Importer that can queue imports without waiting for
// each (domain.Ledger.QueueImport): Apply then keeps up to Window of them
// in flight, which the store commits together.
type QueueImporter interface {
	Importer
	QueueImport(ctx context.Context, cmd domain.Command, after int64, follows domain.QueuedImport) (domain.QueuedImport, error)
}

var _ QueueImporter = (*domain.Ledger)(nil)

// Window is how many imports Apply keeps in flight on a QueueImporter:
// the event store's default batch.
const Window = 1024

// Result counts what Apply did.
type Result struct {
	Appended int // events appended
	Existing int // events already in the ledger (a re-run)
	// Conflicts counts the rows not imported because their user and
	// target hold events in the ledger that the file did not write (a
	// live like, another import): appending older history after them
	// would rewrite the pair's present. Every later row of such a pair is
	// one too. Plan.Conflicts lists them.
	Conflicts int
}

// counted is how many steps r counts, one way or another.
func (r Result) counted() int { return r.Appended + r.Existing + r.Conflicts }

// Apply appends the plan's events in order. progress, when not nil, is
// called after each step with the number done. It stops at the first error
// (storage faults, cancellation); what was appended stays, and a re-run
// continues where it stopped. Over a QueueImporter it queues the steps,
// in order, and waits for each in turn, up to Window ahead: a step of a
// stream with one in flight is queued to follow it (the store appends it
// only after that one's event), so a pair's add and cancel share commits.
func Apply(ctx context.Context, l Importer, p *Plan, progress func(done int)) (Result, error) {
	if _, err := p.s.conn.ExecContext(ctx, `DELETE FROM conflict; DELETE FROM conflicted`); err != nil {
		return Result{}, fmt.Errorf("scratch database: %w", err)
	}
	a := &applier{p: p, l: l, progress: progress, window: 1, streams: map[domain.StreamID]*inStream{}}
	if q, ok := l.(QueueImporter); ok {
		a.q, a.window = q, Window
	}
	err := p.Each(ctx, func(s Step) error { return a.add(ctx, s) })
	if werr := a.waitFor(ctx, len(a.flight)); err == nil {
		err = werr
	}
	return a.res, err
}

// applier is one Apply: the steps in flight, in order, and their streams.
type applier struct {
	p        *Plan
	l        Importer
	q        QueueImporter // nil: l imports one step at a time
	progress func(done int)
	window   int
	flight   []inFlight
	streams  map[domain.StreamID]*inStream
	res      Result
}

// inFlight is a step queued and not yet counted: queued has its result,
// or, nil, it is a later step of a stream in conflict since line first.
type inFlight struct {
	step   Step
	queued domain.QueuedImport
	first  int
}

// inStream is a stream's steps in flight: how many, and the last queued.
type inStream struct {
	n    int
	last domain.QueuedImport
}

// add queues step s, once the window has room, to follow its stream's
// last step in flight.
func (a *applier) add(ctx context.Context, s Step) error {
	for len(a.flight) >= a.window {
		if err := a.waitFor(ctx, 1); err != nil {
			return err
		}
	}
	st := s.Command.Stream
	in := a.streams[st]
	if in == nil {
		in = &inStream{}
		a.streams[st] = in
	}
	f := inFlight{step: s}
	var err error
	if f.first, err = a.firstConflict(ctx, st); err != nil {
		return err
	}
	if f.first == 0 {
		q, err := a.queue(ctx, s, in.last)
		if err != nil {
			return fmt.Errorf("line %d: %w", s.Line, err)
		}
		f.queued = q
	}
	a.flight = append(a.flight, f)
	in.n++
	in.last = f.queued
	return nil
}

// queue imports s: queued over a QueueImporter, else at once.
func (a *applier) queue(ctx context.Context, s Step, follows domain.QueuedImport) (domain.QueuedImport, error) {
	if a.q != nil {
		return a.q.QueueImport(ctx, s.Command, s.After, follows)
	}
	r, err := a.l.Import(ctx, s.Command, s.After)
	return imported{r, err}, nil
}

// imported is a step imported at once.
type imported struct {
	r   domain.ImportResult
	err error
}

func (i imported) Wait() (domain.ImportResult, error) { return i.r, i.err }

// waitFor counts the n oldest steps in flight. After an error it still
// waits for the others (what they appended is counted) and returns the
// first error.
func (a *applier) waitFor(ctx context.Context, n int) error {
	var first error
	for range n {
		f := a.flight[0]
		a.flight = a.flight[1:]
		st := f.step.Command.Stream
		if in := a.streams[st]; in.n == 1 {
			delete(a.streams, st)
		} else {
			in.n--
		}
		if err := a.count(ctx, f); err != nil && first == nil {
			first = err
		}
	}
	if len(a.flight) == 0 {
		a.flight = a.flight[:0:0] // let the array go, not only its front
	}
	return first
}

// count waits for one step's result and counts it.
func (a *applier) count(ctx context.Context, f inFlight) error {
	if err := a.result(ctx, f); err != nil {
		return err
	}
	if a.progress != nil {
		a.progress(a.res.counted())
	}
	return nil
}

// result waits for one step's result and adds it to a.res. A conflict of
// a stream whose earlier step conflicted (a step queued behind it) is
// recorded as that one's.
func (a *applier) result(ctx context.Context, f inFlight) error {
	if f.queued == nil {
		return a.p.conflict(ctx, f.step, f.first, &a.res)
	}
	r, err := f.queued.Wait()
	switch {
	case err != nil:
		return fmt.Errorf("line %d: %w", f.step.Line, err)
	case r == domain.Imported:
		a.res.Appended++
	case r == domain.AlreadyImported:
		a.res.Existing++
	default:
		first, err := a.firstConflict(ctx, f.step.Command.Stream)
		if err != nil {
			return err
		}
		return a.p.conflict(ctx, f.step, first, &a.res)
	}
	return nil
}

// firstConflict is the line of stream st's first conflict of this run, or
// 0 (read only once the run has had a conflict).
func (a *applier) firstConflict(ctx context.Context, st domain.StreamID) (int, error) {
	if a.res.Conflicts == 0 {
		return 0, nil
	}
	line, err := a.p.conflictedLine(ctx, st)
	if err != nil {
		return 0, fmt.Errorf("scratch database: %w", err)
	}
	return line, nil
}

// conflictedLine returns the line of the first conflict of stream, or 0.
// It reads even after ctx's end (see conflict).
func (p *Plan) conflictedLine(ctx context.Context, st domain.StreamID) (int, error) {
	var line int
	err := p.s.conn.QueryRowContext(context.WithoutCancel(ctx), `SELECT line FROM conflicted WHERE user = ? AND target_type = ? AND target_id = ?`,
		st.User.String(), st.Target.Type(), st.Target.ID()).Scan(&line)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return line, err
}

// conflict records step s as not imported: the stream's first conflict
// when first is 0, else a later step of a stream whose first conflict is
// on line first.
func (p *Plan) conflict(ctx context.Context, s Step, first int, res *Result) error {
	// The scratch database is written even after ctx's end: an interrupted
	// Apply records the conflicts it has found, and fails with ctx's error,
	// not a scratch database's.
	ctx = context.WithoutCancel(ctx)
	st := s.Command.Stream
	var err error
	reason := fmt.Sprintf("not imported: its user and target conflict with the ledger (line %d)", first)
	if first == 0 {
		reason = "not imported: its user and target already hold events in the ledger that this file did not write"
		_, err = p.s.conn.ExecContext(ctx, `INSERT INTO conflicted VALUES (?, ?, ?, ?)`,
			st.User.String(), st.Target.Type(), st.Target.ID(), s.Line)
	}
	if err == nil {
		_, err = p.s.conn.ExecContext(ctx, `INSERT INTO conflict (line, reason) VALUES (?, ?)`, s.Line, reason)
	}
	if err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	res.Conflicts++
	return nil
}
