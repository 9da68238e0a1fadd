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

// Apply appends the plan's events in order. progress, when not nil, is
// called after each step with the number done. It stops at the first error
// (storage faults, cancellation); what was appended stays, and a re-run
// continues where it stopped.
func Apply(ctx context.Context, l Importer, p *Plan, progress func(done int)) (Result, error) {
	var res Result
	if _, err := p.s.conn.ExecContext(ctx, `DELETE FROM conflict; DELETE FROM conflicted`); err != nil {
		return res, fmt.Errorf("scratch database: %w", err)
	}
	done := 0
	err := p.Each(ctx, func(s Step) error {
		if err := p.apply(ctx, l, s, &res); err != nil {
			return err
		}
		if done++; progress != nil {
			progress(done)
		}
		return nil
	})
	return res, err
}

// apply imports one step into res.
func (p *Plan) apply(ctx context.Context, l Importer, s Step, res *Result) error {
	if res.Conflicts > 0 {
		first, err := p.conflictedLine(ctx, s.Command.Stream)
		if err != nil {
			return fmt.Errorf("scratch database: %w", err)
		}
		if first != 0 {
			return p.conflict(ctx, s, first, res)
		}
	}
	r, err := l.Import(ctx, s.Command, s.After)
	switch {
	case err != nil:
		return fmt.Errorf("line %d: %w", s.Line, err)
	case r == domain.Imported:
		res.Appended++
	case r == domain.AlreadyImported:
		res.Existing++
	default:
		return p.conflict(ctx, s, 0, res)
	}
	return nil
}

// conflictedLine returns the line of the first conflict of stream, or 0.
func (p *Plan) conflictedLine(ctx context.Context, st domain.StreamID) (int, error) {
	var line int
	err := p.s.conn.QueryRowContext(ctx, `SELECT line FROM conflicted WHERE user = ? AND target_type = ? AND target_id = ?`,
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
