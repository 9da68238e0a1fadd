package logcopy

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

// Progress is how far a copy is: Done events of Total (the source's head).
type Progress struct{ Done, Total int64 }

// progressEvery is how many events pass between two progress reports.
const progressEvery = 1000

// Report is what Copy did.
type Report struct {
	// Source summarizes the log copied, as read from the source.
	Source Summary
	// Resumed is true when the destination held the source's log already
	// (a copy committed, its seal of the source not: a crash, a lost
	// connection): Copy then only sealed the source.
	Resumed bool
}

// Copy copies src's log into dst and seals src, recording Moved{to,
// now}. It holds src's write lock from its first read to the seal, so the
// log takes no write meanwhile and none after it (no twin: two writable
// logs of one LogID would diverge). dst is written in one transaction,
// committed only after it is read back and found to hold exactly what
// was read from src (ErrMismatch otherwise): an interrupted or failed
// copy leaves dst as it was and src unsealed. A dst holding anything
// fails with ErrNotEmpty, unless it holds exactly src's log: that copy's
// seal did not follow, and Copy only seals src (Report.Resumed). A sealed
// src fails with its Moved.Err. progress, when not nil, is called every
// few thousand events. Errors are the stores', prefixed with "source" or
// "destination", or ctx's.
func Copy(ctx context.Context, src, dst Store, to string, progress func(Progress)) (Report, error) {
	rep, err := copyLog(ctx, src, dst, to, progress)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// database/sql closes a transaction's statements once its context
		// ends, and a statement still in use fails with "sql: statement is
		// closed": the cause is ctx's end.
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return rep, err
}

func copyLog(ctx context.Context, src, dst Store, to string, progress func(Progress)) (Report, error) {
	stx, err := src.BeginCopy(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("source: %w", err)
	}
	defer func() { _ = stx.Rollback(context.WithoutCancel(ctx)) }()
	if m, moved, err := stx.Moved(ctx); err != nil {
		return Report{}, fmt.Errorf("source: %w", err)
	} else if moved {
		return Report{}, fmt.Errorf("source: %w", m.Err())
	}
	dtx, err := dst.BeginCopy(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("destination: %w", err)
	}
	defer func() { _ = dtx.Rollback(context.WithoutCancel(ctx)) }()
	if empty, err := dtx.Empty(ctx); err != nil {
		return Report{}, fmt.Errorf("destination: %w", err)
	} else if !empty {
		return resume(ctx, stx, dtx, to)
	}
	read, err := load(ctx, stx, dtx, progress)
	if err != nil {
		return Report{}, err
	}
	copied, err := Summarize(ctx, dtx)
	if err != nil {
		return Report{}, fmt.Errorf("destination: read back: %w", err)
	}
	if copied != read {
		return Report{}, fmt.Errorf("%w: read from the source: %s; written: %s", ErrMismatch, read, copied)
	}
	if err := dtx.Commit(ctx); err != nil {
		return Report{}, fmt.Errorf("destination: commit: %w", err)
	}
	return Report{Source: read}, seal(ctx, stx, to)
}

// load writes stx's log into dtx and summarizes what it read.
func load(ctx context.Context, stx, dtx Tx, progress func(Progress)) (Summary, error) {
	var read Summary
	var err error
	if read.LogID, err = stx.LogID(ctx); err != nil {
		return read, fmt.Errorf("source: %w", err)
	}
	head, err := stx.Head(ctx)
	if err != nil {
		return read, fmt.Errorf("source: %w", err)
	}
	events := func(e Event) {
		read.addEvent(e)
		if progress != nil && read.Events%progressEvery == 0 {
			progress(Progress{Done: read.Events, Total: head})
		}
	}
	var srcErr error // a failure of the source's reads, told apart from the destination's
	log := Log{
		ID:          read.LogID,
		Streams:     observed(stx.Streams(ctx), read.addStream, &srcErr),
		Events:      observed(stx.Events(ctx), events, &srcErr),
		Idempotency: observed(stx.Idempotency(ctx), read.addIdempotency, &srcErr),
	}
	if err := dtx.Load(ctx, log); err != nil {
		if srcErr != nil {
			return read, fmt.Errorf("source: %w", srcErr)
		}
		return read, fmt.Errorf("destination: %w", err)
	}
	if progress != nil {
		progress(Progress{Done: read.Events, Total: head})
	}
	return read, nil
}

// observed passes seq on, calling see with each value and keeping its
// error in *failed.
func observed[T any](seq iter.Seq2[T, error], see func(T), failed *error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for v, err := range seq {
			if err != nil {
				*failed = err
				yield(v, err)
				return
			}
			see(v)
			if !yield(v, nil) {
				return
			}
		}
	}
}

// resume answers a dst that is not empty: when it holds exactly stx's log
// (the same identity, head and last event, then the same rows), the copy
// was committed and its seal was not, so it seals stx; otherwise
// ErrNotEmpty.
func resume(ctx context.Context, stx, dtx Tx, to string) (Report, error) {
	held, err := Summarize(ctx, dtx)
	if err != nil {
		return Report{}, fmt.Errorf("destination: %w", err)
	}
	id, err := stx.LogID(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("source: %w", err)
	}
	head, err := stx.Head(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("source: %w", err)
	}
	if held.LogID != id || held.Head != head || held.Events == 0 {
		return Report{}, fmt.Errorf("%w: it holds %s", ErrNotEmpty, held)
	}
	read, err := Summarize(ctx, stx)
	if err != nil {
		return Report{}, fmt.Errorf("source: %w", err)
	}
	if read != held {
		return Report{}, fmt.Errorf("%w: it holds the source's log (%s) but other rows than the source (%s)", ErrNotEmpty, held, read)
	}
	if err := dtx.Rollback(ctx); err != nil {
		return Report{}, fmt.Errorf("destination: %w", err)
	}
	return Report{Source: read, Resumed: true}, seal(ctx, stx, to)
}

// seal seals the source once the destination holds its log, even when
// ctx ends meanwhile: an interrupt then would leave two writable logs of
// one identity.
func seal(ctx context.Context, stx Tx, to string) error {
	ctx = context.WithoutCancel(ctx)
	err := stx.Seal(ctx, Moved{To: to, At: time.Now()})
	if err == nil {
		err = stx.Commit(ctx)
	}
	if err != nil {
		return fmt.Errorf("the destination holds the log, but sealing the source failed (run the same command again to seal it): %w", err)
	}
	return nil
}
